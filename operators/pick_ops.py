"""Pick Performer: a click on the performer in a frame of the reference clip.

The clip's frame at the current timeline frame is shown in an Image Editor (the movie loaded
as an image, started where the strip or the timeline starts); the artist scrubs to any frame
where the performer is in clear view and clicks on them. execute() takes the point and frame as
properties, so scripts and headless runs pick without a click."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender import inputs
from ..wan_animate_blender.core import performer_pick


def _clip(context) -> tuple[str, int]:
    """The reference movie's path and the timeline frame its first frame plays at."""
    s = context.scene.wan_animate
    if s.clip_source == "FILE":
        if not s.clip_path:
            raise inputs.InputError("Choose the reference clip first, then pick the performer on it.")
        return bpy.path.abspath(s.clip_path), context.scene.frame_start
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    if strip is None or strip.type != "MOVIE":
        raise inputs.InputError(
            "Make the reference movie strip active in the Sequencer (or choose a clip file), then pick."
        )
    return bpy.path.abspath(strip.filepath), int(strip.frame_start)


class PickClick:
    """The click on the clip's frame, shared by Pick Performer and each cast row's pick: the
    subclass's execute() takes x, y and frame."""

    x: bpy.props.FloatProperty(
        name="X", min=0.0, max=1.0, description="0 at the left of the frame, 1 at the right"
    )
    y: bpy.props.FloatProperty(
        name="Y", min=0.0, max=1.0, description="0 at the top of the frame, 1 at the bottom"
    )
    frame: bpy.props.IntProperty(name="Movie Frame", min=0, description="The clip's frame (0 = its first)")

    def invoke(self, context, event):
        try:
            path, start = _clip(context)
            image = bpy.data.images.load(path, check_existing=True)
        except (inputs.InputError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        editors = [a for a in context.screen.areas if a.type == "IMAGE_EDITOR"]
        if not editors:
            self.report(
                {"ERROR"},
                "Open an Image Editor beside this view (split the area, or switch one to Image Editor): "
                "the clip's frame appears there to click on.",
            )
            return {"CANCELLED"}
        # One editor shows the clip: the one already showing it, else the first; others keep theirs.
        area = next((a for a in editors if a.spaces.active.image == image), editors[0])
        space = area.spaces.active
        space.image = image
        iu = space.image_user
        iu.frame_duration = max(1, image.frame_duration)
        iu.frame_start, iu.frame_offset = start, 0
        iu.use_cyclic = False  # movie_frame_shown holds the ends, as a non-cyclic image user does
        iu.use_auto_refresh = True
        area.tag_redraw()
        self._image, self._length = image, max(1, image.frame_duration)
        context.workspace.status_text_set(
            "Click on the performer in the Image Editor; scrub to any frame first. Esc: cancel"
        )
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            context.workspace.status_text_set(None)
            return {"CANCELLED"}
        if event.type != "LEFTMOUSE" or event.value != "PRESS":
            return {"PASS_THROUGH"}
        for area in context.screen.areas:
            if area.type != "IMAGE_EDITOR" or area.spaces.active.image != self._image:
                continue
            for region in area.regions:
                if region.type != "WINDOW":
                    continue
                mx, my = event.mouse_x - region.x, event.mouse_y - region.y
                if not (0 <= mx < region.width and 0 <= my < region.height):
                    continue
                point = performer_pick.point_from_uv(*region.view2d.region_to_view(mx, my))
                if point is None:
                    self.report({"WARNING"}, "Click on the clip's frame, on the performer's body")
                    return {"RUNNING_MODAL"}
                iu = area.spaces.active.image_user
                self.x, self.y = point
                self.frame = performer_pick.movie_frame_shown(
                    context.scene.frame_current, iu.frame_start, iu.frame_offset, self._length
                )
                context.workspace.status_text_set(None)
                return self.execute(context)
        return {"PASS_THROUGH"}


class WANANIM_OT_pick_performer(PickClick, bpy.types.Operator):
    """Click on the performer in the reference clip (shown in an Image Editor), at any frame"""

    bl_idname = "wan_animate.pick_performer"
    bl_label = "Pick Performer"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.wan_animate
        s.performer_point = (self.x, self.y)
        s.performer_frame = self.frame
        s.pick_performer = True
        self.report({"INFO"}, "Performer picked: " + performer_pick.describe((self.x, self.y), self.frame))
        return {"FINISHED"}


class WANANIM_OT_clear_performer(bpy.types.Operator):
    """Follow the largest person again instead of the picked one"""

    bl_idname = "wan_animate.clear_performer"
    bl_label = "Clear Pick"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.wan_animate.pick_performer = False
        return {"FINISHED"}


CLASSES = (WANANIM_OT_pick_performer, WANANIM_OT_clear_performer)
