"""The sidebar's cast: rows added, picked, reordered and removed through the operators, a row
left unpicked refused, one row the one performer of Replace Performer, two rows one job of
two passes imported as one strip, and a batch Shot with a cast on Wan-Animate-2 refused."""

import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, configure, install, main, strips


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene(a["width"], a["height"])
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames = "preview", 1, 5
    s.estimator = "mediapipe"
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    movie = coll.new_movie(name="plate", filepath=a["clip"], channel=2, frame_start=1)
    movie.frame_offset_end = a["frames_cut"]  # the first frames only: a short job
    ed.active_strip = movie
    ops = bpy.ops.wan_animate
    out = {}
    for _ in range(3):
        ops.cast_add()
    (x0, y0), f0 = a["picks"][0]
    (x1, y1), f1 = a["picks"][1]
    out["pick"] = [
        sorted(ops.cast_pick(index=1, x=x0, y=y0, frame=f0)),
        sorted(ops.cast_pick(index=2, x=x1, y=y1, frame=f1)),
    ]
    # Row 1 was never picked: refused, naming the row, before anything runs.
    try:
        ops.replace_performer()
        out["unpicked"] = "ran"
    except RuntimeError as exc:  # the operator's error report
        out["unpicked"] = str(exc)
    out["removed"] = sorted(ops.cast_remove(index=0))
    out["move_down"] = sorted(ops.cast_move(index=0, direction="DOWN"))
    out["after_move"] = [[round(v, 4) for v in m.point] for m in s.cast]
    out["move_past_end"] = sorted(ops.cast_move(index=1, direction="DOWN"))
    ops.cast_move(index=1, direction="UP")  # back: the nearer performer first
    s.cast[0].character_source, s.cast[0].character_image = "FILE", a["characters"][0]
    s.cast[1].character_source = "RENDER"  # a still from the scene's camera
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    job_builder = __import__(MODULE + ".wan_animate_blender.blender.job_builder", fromlist=["job_builder"])
    api = __import__(MODULE + ".wan_animate_blender.api", fromlist=["api"])
    # One row: today's Replace Performer, that row's pick and character (built, not run).
    keep = s.cast[1].point[:], s.cast[1].frame
    ops.cast_remove(index=1)
    session = job_builder.replace_job(bpy.context, movie).session
    one = session.request
    out["one_row"] = [
        one.settings.person,
        one.settings.person_frame,
        one.settings.cast,
        str(session.character),
    ]
    ops.cast_add()
    s.cast[1].character_source = "RENDER"
    ops.cast_pick(index=1, x=keep[0][0], y=keep[0][1], frame=keep[1])
    out["replace"] = [sorted(ops.replace_performer()), s.status]
    results = [x for x in strips(scene) if x.type == "IMAGE"]
    out["strips"] = [[x.name, x.channel, x.frame_final_start, x.frame_final_duration] for x in results]
    folder = Path(bpy.path.abspath(results[0].directory)) if results else None
    out["job"] = json.loads((folder / "job.json").read_text()) if folder else None
    out["folders"] = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder else []
    # Compare Take on a cast's result: the plate, then each pass labelled (the last is the final).
    compare = __import__(MODULE + ".wan_animate_blender.blender.compare", fromlist=["compare"])
    shown = compare.build_compare(folder, scene) if folder else None
    out["compare"] = sorted([x.name, x.type, getattr(x, "text", "")] for x in strips(shown)) if shown else []
    shot = api.Shot(
        "animate2",
        clip=a["clip"],
        engine="wan-animate-2",
        cast=[
            api.CastMember(pick=(x0, y0), character=a["characters"][0]),
            api.CastMember(pick=(x1, y1), character=a["characters"][1]),
        ],
    )
    (refused,) = api.run_batch([shot])
    out["batch_refused"] = [refused.ok, refused.error]
    runtime.stop_backend()
    return out


main(run)
