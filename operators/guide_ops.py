"""Operators on a job's skeleton guide: show/hide it, regenerate from it."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender import guides


def guide_objects(context):
    return [o for o in context.scene.objects if o.type == "ARMATURE" and "wan_animate_job" in o]


class WANANIM_OT_toggle_guides(bpy.types.Operator):
    """Show or hide a job's skeleton guide (and the generated frames behind it)"""

    bl_idname = "wan_animate.toggle_guides"
    bl_label = "Toggle Guide"

    guide: bpy.props.StringProperty(name="Guide", description="Guide armature (empty: every guide)")

    def execute(self, context):
        objs = [o for o in guide_objects(context) if not self.guide or o.name == self.guide]
        if not objs:
            self.report({"ERROR"}, f"No Wan Animate guide named '{self.guide}' in this scene.")
            return {"CANCELLED"}
        for obj in objs:
            guides.set_guides_visible(obj, obj.hide_viewport)
        return {"FINISHED"}


class WANANIM_OT_regenerate_from_guides(bpy.types.Operator):
    """Redraw the pose from the (edited) skeleton guide and generate again, reusing the
    job's detections instead of detecting anew"""

    bl_idname = "wan_animate.regenerate_from_guides"
    bl_label = "Regenerate from Guide"

    guide: bpy.props.StringProperty(name="Guide", description="Guide armature of the job to regenerate")
    seed: bpy.props.IntProperty(name="Seed", default=-1, min=-1, description="-1: the job's own seed")

    def execute(self, context):
        import json
        from pathlib import Path

        from ..backend.protocol import JobRequest, JobSettings
        from ..panels.preferences import prefs, resolved_output_dir, user_dir
        from ..wan_animate_blender.blender import runtime
        from .generate import busy, make_session, run_job

        if busy(self):
            return {"CANCELLED"}
        obj = context.scene.objects.get(self.guide)
        if obj is None or "wan_animate_job" not in obj:
            self.report({"ERROR"}, f"'{self.guide}' is not a Wan Animate guide; pick one from the panel.")
            return {"CANCELLED"}
        job_dir = Path(obj["wan_animate_job"])
        try:
            job = json.loads((job_dir / "job.json").read_text())
        except OSError:
            self.report({"ERROR"}, f"The job folder {job_dir} is gone; the guide cannot be regenerated.")
            return {"CANCELLED"}
        character = Path(job["inputs"]["character"]["path"])
        clip = Path(job["inputs"]["clip"]["path"])
        for label, path in (("character image", character), ("reference clip", clip)):
            if not path.is_file():
                self.report({"ERROR"}, f"The job's {label} {path} is gone; restore it to regenerate.")
                return {"CANCELLED"}
        keypoints = guides.write_edited_keypoints(obj, context.scene, user_dir("edits"))
        settings = JobSettings(**job["settings"])
        if self.seed >= 0:
            settings.seed = self.seed
        req = JobRequest(
            settings=settings,
            keypoints_path=str(keypoints),
            output_dir=str(resolved_output_dir(prefs(context))),
            name=f"{job['name']}_regen",
        )
        session = make_session(context, req, character, clip)
        above = max((s.channel for s in _strips_of(context.scene, job_dir)), default=0)
        running = runtime.RunningJob(
            session,
            context.scene.name,
            f"Wan {job['name']} regen",
            int(obj["wan_animate_frame_start"]),
            above,
        )
        return run_job(self, context, running)


def _strips_of(scene, job_dir):
    from ..wan_animate_blender.blender import compat

    ed = scene.sequence_editor
    if ed is None:
        return []
    return [s for s in compat.all_strips(ed) if s.get("wan_animate_result") == str(job_dir)]


class WANANIM_OT_compare(bpy.types.Operator):
    """Lay out reference, skeleton and result side by side in a new Sequencer scene"""

    bl_idname = "wan_animate.compare"
    bl_label = "Compare Take"

    job_dir: bpy.props.StringProperty(name="Job folder", description="Empty: the active result strip's job")

    def execute(self, context):
        from pathlib import Path

        from ..wan_animate_blender.blender import compare

        job_dir = self.job_dir
        if not job_dir:
            ed = context.scene.sequence_editor
            strip = ed.active_strip if ed else None
            job_dir = strip.get("wan_animate_result", "") if strip else ""
        if not job_dir or not (Path(job_dir) / "job.json").is_file():
            self.report({"ERROR"}, "Select a Wan Animate result strip (or give its job folder) to compare.")
            return {"CANCELLED"}
        scene = compare.build_compare(Path(job_dir), context.scene)
        if context.window is not None:
            context.window.scene = scene
        self.report({"INFO"}, f"Made scene '{scene.name}'")
        return {"FINISHED"}
