"""The clip check's question: after Generate (or Replace Performer) looked at the clip and found
something worth knowing (several people and no pick, a small face, nobody in some frames), the
job waits; this dialog shows whom it will follow and the warnings, with Continue and Cancel.
Headless and in the batch API nothing is asked: the warnings go into the log and the results."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender import runtime


def _asking_job():
    job = runtime.current_job()
    return job if job is not None and job.session.state.asking else None


class WANANIM_OT_clip_check_answer(bpy.types.Operator):
    """Continue the job after the clip check, or cancel it"""

    bl_idname = "wan_animate.clip_check_answer"
    bl_label = "Wan Animate: Clip Check"
    bl_options = {"INTERNAL"}

    def invoke(self, context, event):
        if _asking_job() is None:
            return {"CANCELLED"}
        return context.window_manager.invoke_props_dialog(self, width=460, confirm_text="Continue")

    def draw(self, context):
        job = _asking_job()
        layout = self.layout
        if job is None:
            layout.label(text="The job is no longer waiting.")
            return
        img = bpy.data.images.get(runtime.CHECK_IMAGE)
        if img is not None:
            img.preview_ensure()
            layout.template_icon(icon_value=img.preview.icon_id, scale=12)
            layout.label(text="Green: the person the job follows (skeleton and face box over them).")
        for w in job.session.state.check_warnings:
            col = layout.column(align=True)
            for i, part in enumerate(_wrap(w, 70)):
                col.label(text=part, icon="ERROR" if i == 0 else "BLANK1")

    def execute(self, context):
        job = _asking_job()
        if job is not None:
            job.session.answer(True)
        return {"FINISHED"}

    def cancel(self, context):
        job = _asking_job()
        if job is not None:
            job.session.cancel()


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


CLASSES = (WANANIM_OT_clip_check_answer,)
