"""Replace the performer of a trimmed movie strip, twice, then undo."""

import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, compat, configure, install, main, strips


def state(scene):
    return sorted(
        (x.name, x.type, x.channel, compat().strip_start(x), compat().strip_duration(x), x.mute)
        for x in strips(scene)
    )


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames = "preview", 1, 17
    s.character_source, s.character_image = "FILE", a["character"]
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    movie = coll.new_movie(name="plate", filepath=a["clip"], channel=2, frame_start=5)
    movie.frame_offset_start, movie.frame_offset_end = 10, 70  # shows source frames 10..49
    ed.active_strip = movie
    if a.get("no_camera"):
        scene.camera = None
    before = state(scene)
    r1 = sorted(bpy.ops.wan_animate.replace_performer())
    after1 = state(scene)
    s.relight_strength = 0.4
    r2 = sorted(bpy.ops.wan_animate.replace_performer())
    after2 = state(scene)
    results = [x for x in strips(scene) if x.type == "IMAGE"]
    dirs = [bpy.path.abspath(x.directory) for x in results]
    jobs = [json.loads((Path(d) / "job.json").read_text()) for d in dirs]
    del results  # undo frees the strips these point to: touching them afterwards reads freed memory
    bpy.ops.ed.undo()
    undone = state(bpy.context.scene)
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    return {
        "r1": r1,
        "r2": r2,
        "before": before,
        "after1": after1,
        "after2": after2,
        "undone": undone,
        "status": s.status,
        "modes": [j["settings"]["mode"] for j in jobs],
        "ranges": [[j["settings"]["clip_start"], j["settings"]["clip_frames"]] for j in jobs],
        "dirs": dirs,
        "relight": [[j["settings"]["relight_strength"], j["relighting"]] for j in jobs],
    }


main(run)
