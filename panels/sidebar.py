"""The "Wan Animate" sidebar tab in the 3D Viewport and the Sequencer."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender import compat, guides, runtime
from ..wan_animate_blender.core import cluster_status, engine_choice, performer_pick

CLUSTER_LINES = cluster_status.HealthLines()


def draw_panel(layout, context) -> None:
    s = context.scene.wan_animate
    running = runtime.current_job() is not None

    col = layout.column(align=True)
    col.label(text="Character")
    col.prop(s, "character_source", text="")
    if s.character_source == "FILE":
        col.prop(s, "character_image", text="")
    elif context.scene.camera is None:
        col.label(text="No active camera", icon="ERROR")

    col = layout.column(align=True)
    col.label(text="Reference Clip")
    col.prop(s, "clip_source", text="")
    if s.clip_source == "FILE":
        col.prop(s, "clip_path", text="")

    features = engine_choice.features(s.engine)
    skeleton = features["skeleton"]
    col = layout.column(align=True)
    col.prop(s, "engine")
    if features["prompt"]:
        col.prop(s, "prompt", text="")
    if features["guidance"] and not skeleton:  # Wan2.2-Animate is made to run with guidance off
        col.prop(s, "guidance_scale")

    col = layout.column(align=True)
    col.prop(s, "quality")
    col.prop(s, "steps")
    col.prop(s, "seed")
    col.prop(s, "segment_frames")
    col.prop(s, "overlap")
    col.prop(s, "colour_match")
    col.prop(s, "step_cache")
    if skeleton:  # the skeleton read from the clip: its proportions and who it follows
        col.prop(s, "sampler")
        col.prop(s, "retarget")
        col.prop(s, "estimator")
        row = col.row(align=True)
        row.operator("wan_animate.pick_performer", icon="EYEDROPPER")
        if s.pick_performer:
            row.operator("wan_animate.clear_performer", text="", icon="X")
            col.label(text=performer_pick.describe(tuple(s.performer_point), s.performer_frame), icon="USER")
        else:
            col.label(text="Following the largest person")

    col = layout.column(align=True)
    row = col.row(align=True)
    row.label(text="LoRAs")
    row.operator("wan_animate.add_lora", text="", icon="ADD")
    for i, lo in enumerate(s.loras):
        row = col.row(align=True)
        row.prop(lo, "enabled", text="")
        row.prop(lo, "path", text="")
        row.prop(lo, "strength", text="")
        row.operator("wan_animate.remove_lora", text="", icon="X").index = i

    row = layout.row(align=True)
    row.enabled = not running
    row.scale_y = 1.4
    row.operator("wan_animate.generate", icon="PLAY")
    obj = context.active_object
    if not skeleton:
        # The engine reads video: the scene's animation is rendered and drives it as a clip.
        row = layout.row()
        row.enabled = not running and context.scene.camera is not None
        row.operator("wan_animate.generate_from_animation", icon="RENDER_ANIMATION")
    elif obj is not None and obj.type == "ARMATURE" and "wan_animate_job" not in obj:
        row = layout.row()
        row.enabled = not running
        row.operator("wan_animate.generate_from_armature", icon="ARMATURE_DATA").armature = obj.name
        layout.label(text="Face: neutral unless a face image is given", icon="INFO")
    job = runtime.current_job()
    if job is not None and job.session.state.asking:
        # The clip check found something to know: the job waits for an answer (also asked in a dialog).
        box = layout.box()
        for w in job.session.state.check_warnings:
            box.label(text=w, icon="ERROR")
        row = box.row(align=True)
        row.operator("wan_animate.clip_check_answer", text="Continue", icon="PLAY")
        row.operator("wan_animate.cancel", text="Cancel", icon="CANCEL")
    if running:
        layout.operator("wan_animate.cancel", icon="CANCEL")
        layout.progress(factor=s.progress / 100.0, type="BAR", text=s.status)
    ed = context.scene.sequence_editor
    active = ed.active_strip if ed else None
    if active is not None and active.type == "MOVIE" and engine_choice.has_replace(s.engine):
        row = layout.row()
        row.enabled = not running
        row.operator("wan_animate.replace_performer", icon="USER")
        if not compat.MOVIE_ROTATION_SHOWN:
            # This Blender ignores a movie's rotation flag; the job follows it to line up.
            layout.label(text="Rotated phone clips: read unrotated, as shown", icon="INFO")
        col = layout.column(align=True)
        col.prop(s, "relight_strength")
        col.prop(s, "relight_lora", text="")
        draw_cast(layout, context, running)
    if active is not None and "wan_animate_result" in active:
        layout.operator("wan_animate.compare", icon="SEQ_SPLITVIEW")
    guide_objs = guides.guide_armatures(context.scene) if skeleton else []
    if guide_objs:
        col = layout.column(align=True)
        col.label(text="Skeleton Guides")
        for g in guide_objs:
            row = col.row(align=True)
            icon = "HIDE_ON" if g.hide_viewport else "HIDE_OFF"
            row.operator("wan_animate.toggle_guides", text=g.name, icon=icon).guide = g.name
            row.operator("wan_animate.regenerate_from_guides", text="", icon="FILE_REFRESH").guide = g.name
    if s.status:
        box = layout.box()
        for line in s.status.splitlines()[:6]:
            box.label(text=line[:120])
    job = runtime.current_job()
    if job is not None:
        # A backend in cluster mode says where shots run and what waits.
        for line in CLUSTER_LINES.lines(lambda: job.session._client().health())[:6]:
            layout.label(text=line[:120], icon="NETWORK_DRIVE")


def draw_cast(layout, context, running: bool) -> None:
    """The cast: one row per performer, replaced in this order in one job; none or one row
    replaces one performer as Replace Performer always has."""
    s = context.scene.wan_animate
    box = layout.box()
    box.enabled = not running
    row = box.row(align=True)
    row.label(text="Cast" if len(s.cast) > 1 else "Cast (add rows for several performers)")
    row.operator("wan_animate.cast_add", text="", icon="ADD")
    for i, member in enumerate(s.cast):
        col = box.column(align=True)
        row = col.row(align=True)
        row.label(text=f"{i + 1}.")
        row.operator("wan_animate.cast_pick", text="Pick", icon="EYEDROPPER").index = i
        up = row.operator("wan_animate.cast_move", text="", icon="TRIA_UP")
        up.index, up.direction = i, "UP"
        down = row.operator("wan_animate.cast_move", text="", icon="TRIA_DOWN")
        down.index, down.direction = i, "DOWN"
        row.operator("wan_animate.cast_remove", text="", icon="X").index = i
        if member.picked:
            col.label(text=performer_pick.describe(tuple(member.point), member.frame), icon="USER")
        else:
            col.label(text="Not picked yet", icon="ERROR")
        col.prop(member, "character_source", text="")
        if member.character_source == "FILE":
            col.prop(member, "character_image", text="")
        else:
            col.prop(member, "camera", text="")


class _SidebarPanel:
    bl_label = "Wan Animate"
    bl_region_type = "UI"
    bl_category = "Wan Animate"

    def draw(self, context):
        draw_panel(self.layout, context)


class WANANIM_PT_view3d(_SidebarPanel, bpy.types.Panel):
    bl_idname = "WANANIM_PT_view3d"
    bl_space_type = "VIEW_3D"


class WANANIM_PT_sequencer(_SidebarPanel, bpy.types.Panel):
    bl_idname = "WANANIM_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"
