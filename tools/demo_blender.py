"""Runs inside the bpy wheel (headless): install the built extension as a user
would, build a small scene, put the reference clip on the Sequencer, press
Generate, save the .blend. Arguments: one JSON object."""

import importlib
import json
import math
import sys
from pathlib import Path

import bpy
from mathutils import Vector

# The mannequin the tests render people with (tests/blender_scripts), reused as the character.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "blender_scripts"))
from render_people import Figure, joints  # noqa: E402

MODULE = "bl_ext.user_default.wan_animate"


def main() -> None:
    a = json.loads(sys.argv[-1])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=a["zip"], repo="user_default", enable_on_install=True)
    importlib.import_module(MODULE)
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.backend_python, prefs.model_dir, prefs.output_dir = (
        a["backend_python"],
        a["model_dir"],
        a["output_dir"],
    )
    prefs.cpu_threads = 2

    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 480, 480, 100
    shading = scene.display.shading
    shading.light, shading.color_type, shading.show_shadows = "STUDIO", "MATERIAL", True
    # The character: the tests' rendered mannequin (a person's proportions, with eyes, nose and
    # mouth for the face crop), front-facing, framed head and shoulders as the reference clip
    # frames its performer, so the skeleton retargeted onto it reads as a person of its proportions.
    figure = Figure((0.85, 0.35, 0.2))
    figure.pose(joints(0.04, 0.0, Vector((0.0, 0.0, 0.0))))
    bpy.ops.object.camera_add(location=(0, -1.0, 1.5), rotation=(math.radians(90), 0, 0))
    scene.camera = bpy.context.active_object
    scene.camera.data.lens = 40

    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    ref = coll.new_movie(name="reference", filepath=a["clip"], channel=1, frame_start=1)
    ed.active_strip = ref
    scene.frame_end = ref.frame_final_end - 1
    # Match the scene to the clip (29.97 fps), as Blender's "Set Scene Frame Rate" would.
    scene.render.fps, scene.render.fps_base = 30, 1.001

    s = scene.wan_animate
    s.character_source, s.clip_source = "RENDER", "STRIP"
    s.quality, s.steps, s.segment_frames, s.overlap = "preview", a["steps"], 33, "1"
    bpy.ops.wan_animate.generate()
    print("STATUS:", s.status, flush=True)
    strips = ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all
    result = [x for x in strips if x.type == "IMAGE"][0]
    bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
    Path(a["report"]).write_text(
        json.dumps(
            {
                "status": s.status,
                "strip": result.name,
                "channel": result.channel,
                "frames": len(result.elements),
                "directory": bpy.path.abspath(result.directory),
                "blend": a["blend"],
            }
        )
    )
    runtime = importlib.import_module(MODULE + ".wan_animate_blender.blender.runtime")
    runtime.stop_backend()


main()
sys.stdout.flush()
import os  # noqa: E402

os._exit(0)  # the bpy wheel can hang in interpreter teardown
