"""Each bad input gets a message that says what to do, and loses nothing: the
scene's strips and the output folder are as they were."""

from pathlib import Path

import bpy
from harness import MODULE, build_scene, configure, install, main, strips


def snapshot(scene, out: Path):
    # A failed look for the performer adds a folder of what it saw; nothing else may appear.
    files = (
        sorted(str(p.relative_to(out)) for p in out.rglob("*") if "no_performer_" not in str(p))
        if out.exists()
        else []
    )
    return sorted((x.name, x.channel, x.frame_start) for x in strips(scene)), files


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames = "preview", 2, 17
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    coll.new_movie(name="artist strip", filepath=a["good_clip"], channel=1, frame_start=1)
    out = Path(a["output_dir"])
    (out / "earlier job").mkdir(parents=True)
    (out / "earlier job" / "frame_000001.png").write_bytes(b"artist's file")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    results = {}
    for case in a["cases"]:
        before = snapshot(scene, out)
        prefs.backend_python = case.get("backend_python", a["backend_python"])
        s.clip_source, s.clip_path = "FILE", case.get("clip", a["good_clip"])
        if case.get("character"):
            s.character_source, s.character_image = "FILE", case["character"]
        else:
            s.character_source = "RENDER"
        try:
            r = sorted(bpy.ops.wan_animate.generate())
            err = None
        except RuntimeError as exc:  # an operator's ERROR report raises in background mode
            r, err = ["CANCELLED"], str(exc)
        after = snapshot(scene, out)
        results[case["name"]] = {
            "result": r,
            "error": err,
            "status": s.status,
            "unchanged": before == after,
            "earlier_file": (out / "earlier job" / "frame_000001.png").read_bytes().decode(),
        }
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    # The character still is the camera's view of the scene even with the reference clip on the
    # timeline (the Sequencer's strips would otherwise be what renders), and the scene's own
    # Sequencer setting is left as it was.
    inputs = __import__(MODULE + ".wan_animate_blender.blender.inputs", fromlist=["inputs"])
    still = inputs.render_character_still(scene, out.parent / "stills")
    kept = scene.render.use_sequencer
    scene.render.use_sequencer, scene.render.film_transparent = False, False
    scene.render.filepath = str(out.parent / "camera_view.png")
    bpy.ops.render.render(write_still=True)
    results["still"] = {"still": str(still), "camera": scene.render.filepath, "use_sequencer_kept": kept}
    return results


main(run)
