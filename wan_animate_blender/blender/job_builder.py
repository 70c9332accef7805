"""From the artist's settings to a job on the backend. ``job_settings`` is the one place
that turns settings into the backend's JobSettings: the sidebar's operators pass the
scene, the batch API passes the same settings as keywords, so neither can fall behind
the other when a setting is added."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import bpy

from ...backend.protocol import JobRequest, JobSettings, ignored_defaults
from ..core import engine_choice, performer_pick
from ..core.backend_process import BackendConfig
from ..core.client import BackendClient, BackendError
from ..core.job_session import JobSession
from ..core.resolution import plan_output_size
from ..core.result_files import ResultFileError, read_job
from . import compat, guides, inputs, runtime
from .folders import resolved_backend_python, resolved_model_dir, resolved_output_dir, user_dir
from .settings import prefs, scene_settings

# What building or starting a job raises with a message for the artist. InputError,
# RequestError and StripTimingError are ValueErrors.
JOB_ERRORS: tuple[type[Exception], ...] = (ValueError, BackendError)

_SETTING_NAMES = frozenset(f.name for f in fields(JobSettings))


def character_size(path: Path) -> tuple[int, int]:
    img = bpy.data.images.load(str(path), check_existing=False)
    try:
        return int(img.size[0]), int(img.size[1])
    finally:
        bpy.data.images.remove(img)


def scene_character(scene: Any, override: str = "") -> Path:
    """The character image the sidebar names: an override path, a still rendered from
    the active camera, or the chosen file."""
    s = scene_settings(scene)
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


def row_character(scene: Any, member: Any, n: int) -> Path:
    """A cast row's character: its image, or a still rendered from its camera (the scene's
    active camera when the row names none)."""
    if member.character_source == "RENDER":
        kept = scene.camera
        scene.camera = member.camera or kept
        try:
            return inputs.render_character_still(scene, user_dir("stills"), stem=f"cast_{n}")
        finally:
            scene.camera = kept
    if not member.character_image:
        raise inputs.InputError(f"Cast row {n}: choose a character image, or switch it to Render Camera.")
    character = Path(bpy.path.abspath(member.character_image))
    if not character.is_file():
        raise inputs.InputError(f"Cast row {n}: the character image was not found: {character}.")
    return character


def scene_cast(scene: Any) -> tuple[list[dict[str, Any]], Path | None]:
    """The sidebar's cast as ``cast`` rows for job_settings, and the first row's character
    (the job's own); ([], None) without rows. Every row must be picked: a cast follows each
    performer by their pick, never the largest person."""
    rows = []
    for n, member in enumerate(scene_settings(scene).cast, 1):
        if not member.picked:
            raise inputs.InputError(f"Cast row {n} has no performer: use its Pick button, or remove the row.")
        rows.append(
            {
                "person": tuple(member.point),
                "person_frame": int(member.frame),
                "character_path": str(row_character(scene, member, n)),
            }
        )
    return rows, (Path(rows[0]["character_path"]) if rows else None)


def scene_values(scene: Any) -> dict[str, Any]:
    """The sidebar's settings, as ``job_settings`` keywords."""
    s = scene_settings(scene)
    skeleton = engine_choice.features(s.engine)["skeleton"]
    return {
        "engine": s.engine,
        "prompt": s.prompt,
        "guidance_scale": float(s.guidance_scale),
        "quality": s.quality,
        "steps": s.steps,
        "seed": s.seed,
        "segment_frames": s.segment_frames,
        "overlap": int(s.overlap),
        "colour_match": bool(s.colour_match),
        "output_fps": scene.render.fps / scene.render.fps_base,
        "step_cache": float(s.step_cache),
        "sampler": s.sampler,
        "retarget": "auto" if s.retarget else "off",
        "estimator": s.estimator,
        # A pick is on the skeleton the clip is read into; a video-driven engine has none.
        "person": tuple(s.performer_point) if s.pick_performer and skeleton else None,
        "person_frame": int(s.performer_frame) if s.pick_performer and skeleton else 0,
        "relight_strength": float(s.relight_strength),
        "relight_lora": s.relight_lora,
        "loras": [(lo.path, float(lo.strength)) for lo in s.loras if lo.enabled],
    }


def machine_values(p: Any) -> dict[str, Any]:
    """Speed and memory settings kept per computer, in the add-on preferences."""
    return {"memory_mode": p.memory_mode, "attention": p.attention, "compile": p.compile, "fp8": p.fp8}


def _loras(rows: list) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        path, strength = (row["path"], row.get("strength", 1.0)) if isinstance(row, dict) else row
        if not path:
            raise inputs.InputError("A LoRA row has no file: pick one or remove the row.")
        out.append({"path": str(Path(bpy.path.abspath(path))), "strength": round(float(strength), 4)})
    return out


def job_settings(
    scene: Any, size_from: tuple[int, int], context: Any = None, **overrides: Any
) -> JobSettings:
    """The backend's settings for a job: the scene's sidebar settings and the machine's
    speed and memory preferences, each replaced by a keyword of the same name when given
    (any JobSettings field, or ``quality``), at the output size planned from ``size_from``
    (w, h). ``retarget`` also takes a bool (the sidebar's checkbox), ``person`` an (x, y)
    point, ``loras`` (path, strength) pairs or {"path", "strength"} dicts."""
    if size_from[0] <= 0 or size_from[1] <= 0:
        raise inputs.InputError("Cannot read the character image's size. Save it as PNG or JPEG.")
    unknown = sorted(set(overrides) - _SETTING_NAMES - {"quality"})
    if unknown:
        raise ValueError(f"Unknown Wan Animate setting(s): {', '.join(unknown)}")
    values = {**machine_values(prefs(context)), **scene_values(scene), **overrides}
    sidebar_engine = scene_settings(scene).engine
    if values["engine"] != sidebar_engine:
        # Another engine than the sidebar's (a script's): the sidebar's values left at the sidebar
        # engine's defaults take this engine's, as switching in the sidebar does.
        current = {n: values[n] for n in engine_choice.ENGINE_DEFAULT_NAMES}
        switched = engine_choice.switched_defaults(sidebar_engine, values["engine"], current)
        values.update({n: v for n, v in switched.items() if n not in overrides})
    # The backend refuses a setting the engine has no use for: the sidebar's and the machine's
    # values for the other engine stay behind (a script that names one is told).
    values.update({n: v for n, v in ignored_defaults(values["engine"]).items() if n not in overrides})
    width, height = plan_output_size(size_from[0], size_from[1], values.pop("quality"))
    values.setdefault("width", width)
    values.setdefault("height", height)
    # Float properties are single precision in Blender: rounded, job.json shows what was set.
    for name in ("step_cache", "relight_strength", "guidance_scale"):
        values[name] = round(float(values[name]), 4)
    if isinstance(values["retarget"], bool):
        values["retarget"] = "auto" if values["retarget"] else "off"
    if values["person"] is not None:
        values["person"] = [round(float(v), 4) for v in values["person"]]
        # Picked on a movie frame; the job counts from the first frame of the range it reads.
        start, count = values.get("clip_start", 0), values.get("clip_frames", 0)
        if not performer_pick.in_range(values["person_frame"], start, count):
            raise inputs.InputError(
                f"The performer was picked on movie frame {values['person_frame'] + 1}, which this strip does "
                "not show. Pick the performer again on a frame of the strip, or clear the pick."
            )
        values["person_frame"] = performer_pick.frame_in_range(values["person_frame"], start)
    if values["relight_lora"]:
        values["relight_lora"] = str(Path(bpy.path.abspath(values["relight_lora"])))
    values["loras"] = _loras(values["loras"])
    if values.get("cast"):
        values["cast"] = _cast(values["cast"], values.get("clip_start", 0), values.get("clip_frames", 0))
    settings = JobSettings(**values)
    settings.validate()
    return settings


def _cast(rows: list, start: int, count: int) -> list[dict[str, Any]]:
    """Cast rows ({"person", "person_frame", "character_path"} dicts, or objects with those
    attributes or pick / person_frame / character) as the backend takes them, each pick's
    frame counted from the range the job reads."""
    out = []
    for n, row in enumerate(rows, 1):
        get = row.get if isinstance(row, dict) else lambda k, d=None, r=row: getattr(r, k, d)
        point = get("person") or get("pick")
        frame = int(get("person_frame", 0) or 0)
        character = get("character_path") or get("character")
        if point is None or not character:
            raise inputs.InputError(f"Cast row {n} needs a pick on its performer and a character image.")
        if not performer_pick.in_range(frame, start, count):
            raise inputs.InputError(
                f"Cast row {n} was picked on movie frame {frame + 1}, which this strip does not show. "
                "Pick that performer again on a frame of the strip."
            )
        out.append(
            {
                "person": [round(float(v), 4) for v in point],
                "person_frame": performer_pick.frame_in_range(frame, start),
                "character_path": str(Path(bpy.path.abspath(str(character)))),
            }
        )
    return out


def job_request(context: Any, settings: JobSettings, name: str, **paths: str | None) -> JobRequest:
    """A request writing its job folder to the preferences' output folder."""
    return JobRequest(
        settings=settings, output_dir=str(resolved_output_dir(prefs(context))), name=name, **paths
    )


def make_session(
    context: Any, req: JobRequest, character: Path, clip: Path | None, ask: bool = False
) -> JobSession:
    """A session on the backend the preferences name: remote, or the local one (kept warm).
    ``ask``: the clip check's warnings wait for the artist's Continue or Cancel."""
    p = prefs(context)
    if p.backend_mode == "REMOTE":
        return JobSession(
            req,
            character,
            clip,
            remote=BackendClient(p.remote_url, p.remote_token),
            download_to=resolved_output_dir(p),
            ask_on_warnings=ask,
        )
    cfg = BackendConfig(
        python=resolved_backend_python(p),
        model_dir=resolved_model_dir(p),
        data_dir=user_dir("backend-data"),
        device=p.device,
        threads=p.cpu_threads,
    )
    return JobSession(req, character, clip, local=runtime.local_backend(cfg), ask_on_warnings=ask)


def generate_job(context: Any, character_path: str = "", clip_path: str = "") -> runtime.RunningJob:
    """Generate: the sidebar's character and reference clip (or the override paths)."""
    scene = context.scene
    s = scene_settings(scene)
    character = scene_character(scene, character_path)
    frame_start, above = scene.frame_start, 0
    overrides: dict[str, Any] = {}
    if clip_path:
        clip = Path(bpy.path.abspath(clip_path))
    elif s.clip_source == "STRIP":
        clip, frame_start, above = inputs.reference_from_strip(scene)
        overrides["apply_rotation"] = compat.MOVIE_ROTATION_SHOWN  # as the strip shows it
    else:
        if not s.clip_path:
            raise inputs.InputError("Choose a reference clip, or switch Reference to Active Strip.")
        clip = Path(bpy.path.abspath(s.clip_path))
    if not clip.exists():
        raise inputs.InputError(f"The reference clip was not found: {clip}. Pick an existing file.")
    settings = job_settings(scene, character_size(character), context, **overrides)
    req = job_request(context, settings, clip.stem)
    session = make_session(context, req, character, clip, ask=not bpy.app.background)
    return runtime.RunningJob(session, scene.name, f"Wan {clip.stem}", frame_start, above)


def animation_job(context: Any) -> runtime.RunningJob:
    """Generate from Animation, for an engine driven by video: the scene's animation rendered
    through the active camera (a Workbench playblast kept beside the results) drives the shot."""
    from . import animation_drive

    scene = context.scene
    engine = scene_settings(scene).engine
    if engine_choice.features(engine)["skeleton"]:
        raise inputs.InputError(
            f"{engine_choice.label(engine)} is driven by a skeleton: use Generate from Armature with the "
            "animated armature active, or set Engine to Wan-Animate-2."
        )
    character = scene_character(scene)
    rate = scene.render.fps / scene.render.fps_base
    # The playblast is read at the scene's rate, so the result lines up frame for frame.
    settings = job_settings(scene, character_size(character), context, output_fps=rate)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in scene.name)[:40] or "shot"
    folder = animation_drive.new_folder(resolved_output_dir(prefs(context)), f"{stem}_playblast")
    clip = animation_drive.render_playblast(scene, folder, settings.width, settings.height)
    req = job_request(context, settings, f"{stem}_animation")
    session = make_session(context, req, character, clip)
    return runtime.RunningJob(session, scene.name, f"Wan {stem} animation", scene.frame_start, 0)


def armature_job(context: Any, obj: Any, face_image: str = "", mapping: str = "") -> runtime.RunningJob:
    """Generate from Armature: the armature's motion seen through the active camera (for an
    engine driven by video, the scene's animation rendered: ``animation_job``)."""
    from . import animation_drive

    scene = context.scene
    if not engine_choice.features(scene_settings(scene).engine)["skeleton"]:
        return animation_job(context)
    if obj is None or obj.type != "ARMATURE":
        raise inputs.InputError("Pick an armature (make it active, or name it) to drive the motion.")
    character = scene_character(scene)
    face = Path(bpy.path.abspath(face_image)) if face_image else None
    if face is not None and not face.is_file():
        raise inputs.InputError(f"The face image was not found: {face}. Leave it empty for a neutral face.")
    settings = job_settings(scene, character_size(character), context)
    data = animation_drive.sample_pose_points(scene, obj, settings.width, settings.height, mapping)
    points = animation_drive.write_pose_points(data, user_dir("pose_points"), obj.name)
    req = job_request(
        context, settings, obj.name, keypoints_path=str(points), face_path=str(face) if face else None
    )
    session = make_session(context, req, character, None)
    return runtime.RunningJob(session, scene.name, f"Wan {obj.name}", scene.frame_start, 0)


def replace_job(context: Any, strip: Any) -> runtime.RunningJob:
    """Replace Performer: the character in place of the strip's performer, on the frames
    the strip shows."""
    scene = context.scene
    engine = scene_settings(scene).engine
    if not engine_choice.has_replace(engine):
        raise inputs.InputError(engine_choice.replace_refusal(engine))
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
    cast, character = scene_cast(scene)
    overrides: dict[str, Any] = {"mode": "replace", **inputs.strip_clip_settings(strip)}
    if len(cast) == 1:  # one row: the one performer of Replace Performer, picked in the row
        overrides.update(person=cast[0]["person"], person_frame=cast[0]["person_frame"])
    elif cast:
        overrides["cast"] = cast
    character = character or scene_character(scene)
    el = strip.elements[0]
    size = (el.orig_width or scene.render.resolution_x, el.orig_height or scene.render.resolution_y)
    settings = job_settings(scene, size, context, **overrides)
    req = job_request(context, settings, f"{strip.name}_replaced")
    session = make_session(context, req, character, clip, ask=not bpy.app.background)
    return runtime.RunningJob(
        session,
        scene.name,
        f"{strip.name} replaced",
        compat.strip_start(strip),
        int(strip.channel),
        mute_strip=strip.name,
    )


def regenerate_job(context: Any, guide_name: str, seed: int = -1) -> runtime.RunningJob:
    """Regenerate from Guide: the job's own settings and inputs (seed changed when
    ``seed`` >= 0), with the pose redrawn from the edited guide."""
    scene = context.scene
    obj = scene.objects.get(guide_name)
    if obj is None or "wan_animate_job" not in obj:
        raise inputs.InputError(f"'{guide_name}' is not a Wan Animate guide; pick one from the panel.")
    job_dir = Path(obj["wan_animate_job"])
    if not job_dir.is_dir():
        raise inputs.InputError(f"The job folder {job_dir} is gone; the guide cannot be regenerated.")
    try:
        job = read_job(job_dir)
    except ResultFileError as exc:
        raise inputs.InputError(f"{exc} The guide cannot be regenerated.") from None
    character = Path(job["inputs"]["character"]["path"])
    clip = Path(job["inputs"]["clip"]["path"])
    for label, path in (("character image", character), ("reference clip", clip)):
        if not path.is_file():
            raise inputs.InputError(f"The job's {label} {path} is gone; restore it to regenerate.")
    keypoints = guides.write_edited_keypoints(obj, scene, user_dir("edits"))
    # The job's settings as recorded, not the sidebar's: a regeneration changes the pose only.
    settings = JobSettings(**job["settings"])
    if seed >= 0:
        settings.seed = seed
    req = job_request(context, settings, f"{job['name']}_regen", keypoints_path=str(keypoints))
    session = make_session(context, req, character, clip)
    above = max((s.channel for s in guides.result_strips(scene, job_dir)), default=0)
    return runtime.RunningJob(
        session, scene.name, f"Wan {job['name']} regen", int(obj["wan_animate_frame_start"]), above
    )
