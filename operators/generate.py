"""Generate and Cancel. execute() is complete on its own: headless (``blender -b``,
scripts) it runs the job to the end; with a UI it returns at once and a timer
follows the job, so Blender never waits on the network or the model."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..backend.protocol import JobRequest, JobSettings, RequestError
from ..panels.preferences import (
    prefs,
    resolved_backend_python,
    resolved_model_dir,
    resolved_output_dir,
    user_dir,
)
from ..wan_animate_blender.blender import compat, inputs, runtime
from ..wan_animate_blender.core.backend_process import BackendConfig
from ..wan_animate_blender.core.client import BackendClient, BackendError
from ..wan_animate_blender.core.job_session import JobSession
from ..wan_animate_blender.core.resolution import plan_output_size
from ..wan_animate_blender.core.strip_timing import StripTimingError, shown_range


def _character_size(path: Path) -> tuple[int, int]:
    img = bpy.data.images.load(str(path), check_existing=False)
    try:
        return int(img.size[0]), int(img.size[1])
    finally:
        bpy.data.images.remove(img)


def panel_character(scene, override: str = "") -> Path:
    """The character image the panel names: an override path, a still rendered from
    the active camera, or the chosen file."""
    s = scene.wan_animate
    if override:
        character = Path(bpy.path.abspath(override))
    elif s.character_source == "RENDER":
        return inputs.render_character_still(scene, user_dir("stills"))
    else:
        if not s.character_image:
            raise inputs.InputError("Choose a character image, or switch Character to Render Camera.")
        character = Path(bpy.path.abspath(s.character_image))
    if not character.is_file():
        raise inputs.InputError(f"The character image was not found: {character}. Pick an existing file.")
    return character


def machine_settings(p) -> dict:
    """Speed and memory settings kept per computer, in the add-on preferences."""
    return {"memory_mode": p.memory_mode, "attention": p.attention, "compile": p.compile, "fp8": p.fp8}


def panel_loras(s) -> list[dict]:
    out = []
    for lo in s.loras:
        if not lo.enabled:
            continue
        if not lo.path:
            raise inputs.InputError("A LoRA row has no file: pick one or remove the row.")
        out.append({"path": str(Path(bpy.path.abspath(lo.path))), "strength": round(float(lo.strength), 4)})
    return out


def panel_settings(scene, size_from: tuple[int, int], **overrides) -> JobSettings:
    """The panel's settings, at the output size planned from ``size_from`` (w, h)."""
    s = scene.wan_animate
    if size_from[0] <= 0 or size_from[1] <= 0:
        raise inputs.InputError("Cannot read the character image's size. Save it as PNG or JPEG.")
    width, height = plan_output_size(size_from[0], size_from[1], s.quality)
    settings = JobSettings(
        width=width,
        height=height,
        steps=s.steps,
        seed=s.seed,
        segment_frames=s.segment_frames,
        overlap=int(s.overlap),
        colour_match=bool(s.colour_match),
        output_fps=scene.render.fps / scene.render.fps_base,
        step_cache=round(float(s.step_cache), 4),
        retarget="auto" if s.retarget else "off",
        estimator=s.estimator,
        person=[round(float(v), 4) for v in s.performer_point] if s.pick_performer else None,
        relight_strength=round(float(s.relight_strength), 4),
        relight_lora=str(Path(bpy.path.abspath(s.relight_lora))) if s.relight_lora else "",
        loras=panel_loras(s),
        **machine_settings(prefs()),
    )
    for k, v in overrides.items():
        setattr(settings, k, v)
    settings.validate()
    return settings


def busy(op) -> bool:
    if runtime.current_job() is None:
        return False
    op.report({"ERROR"}, "A Wan Animate job is already running; cancel it or wait for it to finish.")
    return True


def build_job(context, character_path: str = "", clip_path: str = "") -> runtime.RunningJob:
    scene = context.scene
    s = scene.wan_animate
    p = prefs(context)
    out_dir = resolved_output_dir(p)

    character = panel_character(scene, character_path)

    frame_start, above = scene.frame_start, 0
    if clip_path:
        clip = Path(bpy.path.abspath(clip_path))
    elif s.clip_source == "STRIP":
        clip, frame_start, above = inputs.reference_from_strip(scene)
    else:
        if not s.clip_path:
            raise inputs.InputError("Choose a reference clip, or switch Reference to Active Strip.")
        clip = Path(bpy.path.abspath(s.clip_path))
    if not clip.is_file():
        raise inputs.InputError(f"The reference clip was not found: {clip}. Pick an existing file.")
    settings = panel_settings(scene, _character_size(character))
    req = JobRequest(settings=settings, output_dir=str(out_dir), name=clip.stem)

    session = make_session(context, req, character, clip)
    return runtime.RunningJob(session, scene.name, f"Wan {clip.stem}", frame_start, above)


def make_session(context, req: JobRequest, character: Path, clip: Path | None) -> JobSession:
    """A session on the backend the preferences name: remote, or the local one (kept warm)."""
    p = prefs(context)
    if p.backend_mode == "REMOTE":
        return JobSession(
            req,
            character,
            clip,
            remote=BackendClient(p.remote_url, p.remote_token),
            download_to=resolved_output_dir(p),
        )
    else:
        cfg = BackendConfig(
            python=resolved_backend_python(p),
            model_dir=resolved_model_dir(p),
            data_dir=user_dir("backend-data"),
            device=p.device,
            threads=p.cpu_threads,
        )
        return JobSession(req, character, clip, local=runtime.local_backend(cfg))


class WANANIM_OT_generate(bpy.types.Operator):
    """Generate an animation of the character driven by the reference clip"""

    bl_idname = "wan_animate.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    character_path: bpy.props.StringProperty(name="Character", description="Override: character image file")
    clip_path: bpy.props.StringProperty(name="Clip", description="Override: reference movie file")

    def execute(self, context):
        if busy(self):
            return {"CANCELLED"}
        try:
            job = build_job(context, self.character_path, self.clip_path)
        except (inputs.InputError, RequestError, BackendError, ValueError) as exc:
            context.scene.wan_animate.status = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return run_job(self, context, job)


def run_job(op, context, job: runtime.RunningJob) -> set[str]:
    """With a UI: start and return (a timer follows). Headless: run to the end."""
    if not bpy.app.background:
        runtime.start_job(job)
        op.report({"INFO"}, "Wan Animate job started")
        return {"FINISHED"}
    # Timers never fire in background mode, so the job runs to the end right here.
    runtime.set_job(job)
    job.session.run()
    runtime.poll_running_job()
    st = job.session.state
    if st.cancelled:
        op.report({"WARNING"}, st.message)
        return {"CANCELLED"}
    if not st.ok:
        op.report({"ERROR"}, st.error or "The job failed")
        return {"CANCELLED"}
    op.report({"INFO"}, context.scene.wan_animate.status)
    return {"FINISHED"}


class WANANIM_OT_cancel(bpy.types.Operator):
    """Cancel the running Wan Animate job (takes effect within one denoising step)"""

    bl_idname = "wan_animate.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return runtime.current_job() is not None

    def execute(self, context):
        job = runtime.current_job()
        if job is not None:
            job.session.cancel()
            context.scene.wan_animate.status = "Cancelling…"
        return {"FINISHED"}


class WANANIM_OT_generate_from_armature(bpy.types.Operator):
    """Generate with the motion of an animated armature seen through the active camera
    (no reference clip). Face: the given image, or a neutral face"""

    bl_idname = "wan_animate.generate_from_armature"
    bl_label = "Generate from Armature"

    armature: bpy.props.StringProperty(name="Armature", description="Empty: the active object")
    face_image: bpy.props.StringProperty(
        name="Face", subtype="FILE_PATH", description="A face photo for expressions; empty: neutral face"
    )
    mapping: bpy.props.StringProperty(name="Mapping", description="Overrides, e.g. 'LWrist=hand_L:head'")

    def execute(self, context):
        from ..wan_animate_blender.blender import animation_drive

        if busy(self):
            return {"CANCELLED"}
        scene = context.scene
        s = scene.wan_animate
        obj = scene.objects.get(self.armature) if self.armature else context.active_object
        try:
            if obj is None or obj.type != "ARMATURE":
                raise inputs.InputError("Pick an armature (make it active, or name it) to drive the motion.")
            character = panel_character(scene)
            face = Path(bpy.path.abspath(self.face_image)) if self.face_image else None
            if face is not None and not face.is_file():
                raise inputs.InputError(
                    f"The face image was not found: {face}. Leave it empty for a neutral face."
                )
            settings = panel_settings(scene, _character_size(character))
            data = animation_drive.sample_pose_points(
                scene, obj, settings.width, settings.height, self.mapping
            )
            points = animation_drive.write_pose_points(data, user_dir("pose_points"), obj.name)
        except (inputs.InputError, RequestError, StripTimingError, ValueError) as exc:
            s.status = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        req = JobRequest(
            settings=settings,
            keypoints_path=str(points),
            face_path=str(face) if face else None,
            output_dir=str(resolved_output_dir(prefs(context))),
            name=obj.name,
        )
        session = make_session(context, req, character, None)
        job = runtime.RunningJob(session, scene.name, f"Wan {obj.name}", scene.frame_start, 0)
        return run_job(self, context, job)


class WANANIM_OT_replace_performer(bpy.types.Operator):
    """Put the character into the active movie strip in place of its performer (replace
    mode), on the frames the strip shows; the original is muted, never deleted"""

    bl_idname = "wan_animate.replace_performer"
    bl_label = "Replace Performer"
    bl_options = {"REGISTER"}  # the import pushes its own undo steps, around the change

    def execute(self, context):
        if busy(self):
            return {"CANCELLED"}
        scene = context.scene
        s = scene.wan_animate
        ed = scene.sequence_editor
        strip = ed.active_strip if ed else None
        try:
            if strip is None or strip.type != "MOVIE":
                raise inputs.InputError("Select the movie strip whose performer should be replaced.")
            if strip.use_reverse_frames:
                raise inputs.InputError(
                    f"'{strip.name}' plays in reverse; Replace Performer follows forward playback only. "
                    "Turn off Reverse Frames, replace, then reverse the result strip."
                )
            clip = Path(bpy.path.abspath(strip.filepath))
            if not clip.is_file():
                raise inputs.InputError(f"The strip's movie file was not found: {clip}.")
            character = panel_character(scene)
            el = strip.elements[0]
            size = (el.orig_width or scene.render.resolution_x, el.orig_height or scene.render.resolution_y)
            shown = shown_range(
                int(strip.frame_start),
                int(strip.frame_final_start),
                int(strip.frame_final_end),
                compat.movie_length(strip),
                compat.retiming_key_frames(strip),
                compat.RETIMING_KEYS_END_EXCLUSIVE,
            )
            # The result keeps the movie's rate and spans the shown content at the strip's speed,
            # so it lines up with the strip frame for frame.
            settings = panel_settings(
                scene,
                size,
                mode="replace",
                output_fps=strip.fps,
                clip_start=shown.first,
                clip_frames=shown.count,
                clip_speed=shown.speed,
            )
        except (inputs.InputError, RequestError, StripTimingError, ValueError) as exc:
            s.status = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        req = JobRequest(
            settings=settings,
            output_dir=str(resolved_output_dir(prefs(context))),
            name=f"{strip.name}_replaced",
        )
        session = make_session(context, req, character, clip)
        job = runtime.RunningJob(
            session,
            scene.name,
            f"{strip.name} replaced",
            int(strip.frame_final_start),
            int(strip.channel),
            mute_strip=strip.name,
        )
        return run_job(self, context, job)
