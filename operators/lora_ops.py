"""Adding and removing the LoRA rows of the sidebar."""

from __future__ import annotations

import bpy


class WANANIM_OT_add_lora(bpy.types.Operator):
    """Add a LoRA row (a step-distillation LoRA lets 4 to 8 steps do the work of 20)"""

    bl_idname = "wan_animate.add_lora"
    bl_label = "Add LoRA"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.wan_animate.loras.add()
        return {"FINISHED"}


class WANANIM_OT_remove_lora(bpy.types.Operator):
    """Remove this LoRA row (the file itself is left alone)"""

    bl_idname = "wan_animate.remove_lora"
    bl_label = "Remove LoRA"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=-1)

    def execute(self, context):
        loras = context.scene.wan_animate.loras
        if not 0 <= self.index < len(loras):
            self.report({"ERROR"}, f"There is no LoRA row {self.index}.")
            return {"CANCELLED"}
        loras.remove(self.index)
        return {"FINISHED"}
