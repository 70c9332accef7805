"""Install, then disable/enable twice: operators, panels and properties come and
go cleanly."""

import bpy
from harness import MODULE, install, main


def state():
    return {
        "generate_op": hasattr(bpy.ops.wan_animate, "generate") and "generate" in dir(bpy.ops.wan_animate),
        "scene_prop": hasattr(bpy.types.Scene, "wan_animate"),
        "panel_3d": hasattr(bpy.types, "WANANIM_PT_view3d"),
        "panel_seq": hasattr(bpy.types, "WANANIM_PT_sequencer"),
        "enabled": MODULE in bpy.context.preferences.addons,
    }


def run(a):
    import addon_utils  # importable only once bpy is

    install(a["zip"])
    out = {"version": list(bpy.app.version), "after_install": state(), "cycles": []}
    for _ in range(2):
        addon_utils.disable(MODULE, default_set=True)
        off = state()
        addon_utils.enable(MODULE, default_set=True)
        out["cycles"].append({"off": off, "on": state()})
    s = bpy.context.scene.wan_animate
    out["defaults"] = {"steps": s.steps, "segment_frames": s.segment_frames, "quality": s.quality}
    return out


main(run)
