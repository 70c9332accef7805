"""Where the logic reads the artist's settings: the add-on preferences (per computer)
and the scene's Wan Animate properties (per shot). The properties are defined by the
UI (panels/); the logic reaches them through bpy, never by importing the UI."""

from __future__ import annotations

from typing import Any

import bpy

# The extension's package (bl_ext.<repo>.wan_animate): this module sits two levels below it.
ADDON_PACKAGE = __package__.removesuffix(".wan_animate_blender.blender")


def prefs(context: Any = None) -> Any:
    """The add-on preferences (backend, folders, speed and memory)."""
    context = context or bpy.context
    return context.preferences.addons[ADDON_PACKAGE].preferences


def scene_settings(scene: Any) -> Any:
    """The scene's sidebar settings (scene.wan_animate)."""
    return scene.wan_animate
