"""A retimed, trimmed movie strip: made and rendered in 4.2 or 4.5 (5.0 cannot add retiming
keys headless), then Replace Performer on it in any version."""

import json
from pathlib import Path

import bpy
from harness import build_scene, compat, configure, install, main, strips


def make(a):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = build_scene(176, 144)  # the clip's own size: the renders show its pixels unscaled
    scene.view_settings.view_transform = "Standard"
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    plate = coll.new_movie(name="plate", filepath=a["clip"], channel=2, frame_start=5)
    plate.select = True
    ed.active_strip = plate
    bpy.ops.sequencer.retiming_segment_speed_set(speed=a["speed_percent"])
    # Made without the add-on, in 4.2 or 4.5 only, where these names are current.
    plate.frame_final_start += a["trim_start"]
    plate.frame_final_end -= a["trim_end"]
    shown = [plate.frame_final_start, plate.frame_final_end - 1]
    renders = []
    for t in shown:
        scene.frame_set(t)
        scene.render.filepath = str(Path(a["renders"]) / f"shown_{t}.png")
        bpy.ops.render.render(write_still=True)
        renders.append(scene.render.filepath)
    bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
    return {"renders": renders, "keys": [k.timeline_frame for k in plate.retiming_keys], "shown": shown}


def replace(a):
    install(a["zip"])
    bpy.ops.wm.open_mainfile(filepath=a["blend"])
    configure(a)
    scene = bpy.context.scene
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames = "preview", 1, 17
    s.character_source, s.character_image = "FILE", a["character"]
    ed = scene.sequence_editor
    plate = [x for x in strips(scene) if x.name == "plate"][0]
    ed.active_strip = plate
    c = compat()
    plate_range = [c.strip_start(plate), c.strip_duration(plate)]
    renders = []  # what this Blender shows at the strip's ends: the truth to check against
    for t in (c.strip_start(plate), c.strip_end(plate) - 1):
        scene.frame_set(t)
        scene.render.filepath = str(Path(a["renders"]) / f"shown_{t}.png")
        bpy.ops.render.render(write_still=True)
        renders.append(scene.render.filepath)
    result = sorted(bpy.ops.wan_animate.replace_performer())
    (made,) = [x for x in strips(scene) if x.type == "IMAGE"]
    job = json.loads((Path(bpy.path.abspath(made.directory)) / "job.json").read_text())
    from harness import MODULE

    __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"]).stop_backend()
    return {
        "result": result,
        "renders": renders,
        "status": s.status,
        "plate": plate_range,
        "made": [c.strip_start(made), c.strip_duration(made)],
        "settings": job["settings"],
        "frame_count": job["frame_count"],
    }


main(lambda a: make(a) if a.get("make") else replace(a))
