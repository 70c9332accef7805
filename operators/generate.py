"""Generate, Cancel, Generate from Armature or from Animation, and Replace Performer. execute() is complete
on its own: headless (``blender -b``, scripts) it runs the job to the end; with a UI it
returns at once and a timer follows the job, so Blender never waits on the network or
the model. The jobs are built in wan_animate_blender.blender.job_builder."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender import job_builder, runtime
from ..wan_animate_blender.core import engine_choice


def busy(op) -> bool:
    if runtime.current_job() is None:
        return False
    op.report({"ERROR"}, "A Wan Animate job is already running; cancel it or wait for it to finish.")
    return True


def _refuse(op, context, exc: Exception) -> set[str]:
    context.scene.wan_animate.status = str(exc)
    op.report({"ERROR"}, str(exc))
    return {"CANCELLED"}


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
            job = job_builder.generate_job(context, self.character_path, self.clip_path)
        except job_builder.JOB_ERRORS as exc:
            return _refuse(self, context, exc)
        return run_job(self, context, job)


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
        if busy(self):
            return {"CANCELLED"}
        obj = context.scene.objects.get(self.armature) if self.armature else context.active_object
        try:
            job = job_builder.armature_job(context, obj, self.face_image, self.mapping)
        except job_builder.JOB_ERRORS as exc:
            return _refuse(self, context, exc)
        return run_job(self, context, job)


class WANANIM_OT_generate_from_animation(bpy.types.Operator):
    """Render the scene's animation through the active camera (a fast Workbench playblast,
    kept beside the results) and use it as the driving clip: no reference clip, no skeleton"""

    bl_idname = "wan_animate.generate_from_animation"
    bl_label = "Generate from Animation"

    def execute(self, context):
        if busy(self):
            return {"CANCELLED"}
        try:
            job = job_builder.animation_job(context)
        except job_builder.JOB_ERRORS as exc:
            return _refuse(self, context, exc)
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
        engine = context.scene.wan_animate.engine
        if not engine_choice.has_replace(engine):
            # Refused before anything is read or rendered: the engine cannot put a character into a plate.
            return _refuse(self, context, ValueError(engine_choice.replace_refusal(engine)))
        ed = context.scene.sequence_editor
        try:
            job = job_builder.replace_job(context, ed.active_strip if ed else None)
        except job_builder.JOB_ERRORS as exc:
            return _refuse(self, context, exc)
        return run_job(self, context, job)
