"""Wan Animate for Blender: animate or replace a character with Wan2.2-Animate.

Blender UI (operators/, panels/) -> add-on logic (wan_animate_blender/blender/) ->
its bpy-free core (wan_animate_blender/core/) -> HTTP -> the backend process (backend/);
imports only ever point down that line (tests/test_import_graph.py). Modules that need
bpy are imported in register() so the bpy-free parts stay importable by tests and by
the backend."""

from __future__ import annotations

_classes: list = []


def register() -> None:
    import bpy

    from .operators import backend_ops, cast_ops, check_ops, generate, guide_ops, lora_ops, pick_ops
    from .panels import preferences, properties, sidebar

    _classes[:] = [
        preferences.WANANIM_AddonPreferences,
        properties.WANANIM_Lora,
        properties.WANANIM_CastMember,
        properties.WANANIM_Settings,
        generate.WANANIM_OT_generate,
        generate.WANANIM_OT_cancel,
        generate.WANANIM_OT_generate_from_armature,
        generate.WANANIM_OT_generate_from_animation,
        generate.WANANIM_OT_replace_performer,
        *backend_ops.CLASSES,
        guide_ops.WANANIM_OT_toggle_guides,
        guide_ops.WANANIM_OT_regenerate_from_guides,
        guide_ops.WANANIM_OT_compare,
        lora_ops.WANANIM_OT_add_lora,
        lora_ops.WANANIM_OT_remove_lora,
        *pick_ops.CLASSES,
        *cast_ops.CLASSES,
        *check_ops.CLASSES,
        sidebar.WANANIM_PT_view3d,
        sidebar.WANANIM_PT_sequencer,
    ]
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.wan_animate = bpy.props.PointerProperty(type=properties.WANANIM_Settings)


def unregister() -> None:
    import bpy

    from .wan_animate_blender.blender import backend_setup, runtime

    job = runtime.current_job()
    if job is not None:
        job.session.cancel()
        runtime.set_job(None)
    if bpy.app.timers.is_registered(runtime.poll_running_job):
        bpy.app.timers.unregister(runtime.poll_running_job)
    runtime.stop_backend()
    backend_setup.cancel_download()
    if hasattr(bpy.types.Scene, "wan_animate"):
        del bpy.types.Scene.wan_animate
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    _classes.clear()
