"""The cast of Replace Performer: rows of a performer (picked by a click, as Pick Performer)
and the character that replaces them, added, removed, reordered and picked. Every execute()
takes its row and values as properties, so scripts and headless runs build a cast too."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.core import performer_pick
from .pick_ops import PickClick


def _row(context, index: int):
    cast = context.scene.wan_animate.cast
    return cast[index] if 0 <= index < len(cast) else None


class WANANIM_OT_cast_add(bpy.types.Operator):
    """Add a performer to the cast (pick them, then choose their character)"""

    bl_idname = "wan_animate.cast_add"
    bl_label = "Add Performer"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.wan_animate.cast.add()
        return {"FINISHED"}


class WANANIM_OT_cast_remove(bpy.types.Operator):
    """Remove this performer from the cast"""

    bl_idname = "wan_animate.cast_remove"
    bl_label = "Remove Performer"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(min=0)

    def execute(self, context):
        if _row(context, self.index) is None:
            return {"CANCELLED"}
        context.scene.wan_animate.cast.remove(self.index)
        return {"FINISHED"}


class WANANIM_OT_cast_move(bpy.types.Operator):
    """Move this performer up or down: rows are replaced in order, each on the plate the one before made"""

    bl_idname = "wan_animate.cast_move"
    bl_label = "Move Performer"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(min=0)
    direction: bpy.props.EnumProperty(items=[("UP", "Up", ""), ("DOWN", "Down", "")], default="UP")

    def execute(self, context):
        cast = context.scene.wan_animate.cast
        to = self.index + (-1 if self.direction == "UP" else 1)
        if _row(context, self.index) is None or not 0 <= to < len(cast):
            return {"CANCELLED"}
        cast.move(self.index, to)
        return {"FINISHED"}


class WANANIM_OT_cast_pick(PickClick, bpy.types.Operator):
    """Click on this row's performer in the reference clip (shown in an Image Editor), at any frame"""

    bl_idname = "wan_animate.cast_pick"
    bl_label = "Pick"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(min=0)

    def execute(self, context):
        row = _row(context, self.index)
        if row is None:
            self.report({"ERROR"}, f"There is no cast row {self.index + 1}; add one first.")
            return {"CANCELLED"}
        row.point, row.frame, row.picked = (self.x, self.y), self.frame, True
        where = performer_pick.describe((self.x, self.y), self.frame)
        self.report({"INFO"}, f"Cast row {self.index + 1} picked: {where}")
        return {"FINISHED"}


CLASSES = (WANANIM_OT_cast_add, WANANIM_OT_cast_remove, WANANIM_OT_cast_move, WANANIM_OT_cast_pick)
