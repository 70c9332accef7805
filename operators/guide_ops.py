"""Operators on a job's skeleton guide: show/hide it, regenerate from it, compare a take."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..wan_animate_blender.blender import compare, compat, guides, job_builder
from .generate import busy, run_job


class WANANIM_OT_toggle_guides(bpy.types.Operator):
    """Show or hide a job's skeleton guide (and the generated frames behind it)"""

    bl_idname = "wan_animate.toggle_guides"
    bl_label = "Toggle Guide"

    guide: bpy.props.StringProperty(name="Guide", description="Guide armature (empty: every guide)")

    def execute(self, context):
        objs = [o for o in guides.guide_armatures(context.scene) if not self.guide or o.name == self.guide]
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
        if busy(self):
            return {"CANCELLED"}
        try:
            job = job_builder.regenerate_job(context, self.guide, self.seed)
        except job_builder.JOB_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return run_job(self, context, job)


class WANANIM_OT_compare(bpy.types.Operator):
    """Lay out reference, skeleton and result side by side in a new Sequencer scene; with several
    result strips selected, the reference and each take (labelled by its engine) side by side"""

    bl_idname = "wan_animate.compare"
    bl_label = "Compare Take"

    job_dir: bpy.props.StringProperty(
        name="Job folder",
        description="Empty: the selected result strips' jobs (or the active one's). Several folders: separate with ;",
    )

    def execute(self, context):
        job_dirs = (
            [d for d in self.job_dir.split(";") if d.strip()] if self.job_dir else _selected_jobs(context)
        )
        if not job_dirs or not all((Path(d) / "job.json").is_file() for d in job_dirs):
            self.report({"ERROR"}, "Select a Wan Animate result strip (or give its job folder) to compare.")
            return {"CANCELLED"}
        try:
            if len(job_dirs) == 1:
                scene = compare.build_compare(Path(job_dirs[0]), context.scene)
            else:
                scene = compare.build_compare_takes([Path(d) for d in job_dirs], context.scene)
        except compare.CompareError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if context.window is not None:
            context.window.scene = scene
        self.report({"INFO"}, f"Made scene '{scene.name}'")
        return {"FINISHED"}


def _selected_jobs(context) -> list[str]:
    """The selected result strips' jobs, each once, bottom channel first; else the active strip's."""
    ed = context.scene.sequence_editor
    if ed is None:
        return []
    picked = sorted(
        (s for s in compat.all_strips(ed) if s.select and s.get("wan_animate_result")),
        key=lambda s: (s.channel, s.frame_start),
    )
    dirs = list(dict.fromkeys(str(s["wan_animate_result"]) for s in picked))
    if len(dirs) > 1:
        return dirs
    active = ed.active_strip
    job = active.get("wan_animate_result", "") if active else ""
    return [job] if job else dirs
