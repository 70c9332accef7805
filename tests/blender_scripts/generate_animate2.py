"""Wan-Animate-2 from the sidebar: the engine's defaults, Replace Performer refused, Generate
on a short clip, and Generate from Animation (a playblast of an animated object)."""

import json
import time
from pathlib import Path

import bpy
from harness import MODULE, build_scene, compat, configure, install, main, strips


def new_strips(scene, before: set) -> list[dict]:
    out = []
    for x in strips(scene):
        if x.name in before:
            continue
        job_json = Path(x.directory) / "job.json"
        out.append(
            {
                "name": x.name,
                "type": x.type,
                "elements": len(x.elements),
                "frame_start": x.frame_start,
                "missing": [e.filename for e in x.elements if not (Path(x.directory) / e.filename).is_file()],
                "job": json.loads(job_json.read_text()) if job_json.is_file() else None,
            }
        )
    return out


def compare_takes(scene, takes: list) -> tuple[list[str], dict]:
    """Compare Take with these result strips selected: the new scene's strips as laid out."""
    for x in strips(scene):
        x.select = x in takes
    scene.sequence_editor.active_strip = takes[0]
    names = {sc.name for sc in bpy.data.scenes}
    try:
        result = sorted(bpy.ops.wan_animate.compare())
    except RuntimeError as exc:  # an operator reporting an error raises in background mode
        return ["CANCELLED"], {"report": str(exc), "scenes": [sc.name for sc in bpy.data.scenes]}
    comp = next(sc for sc in bpy.data.scenes if sc.name not in names)
    shown = bpy.context.window.scene.name
    bpy.context.window.scene = scene  # the compare scene was shown; back to the edit
    laid = []
    for x in strips(comp):
        row = {"name": x.name, "type": x.type, "channel": x.channel, "start": compat().strip_start(x)}
        row["duration"] = compat().strip_duration(x)
        if x.type == "TEXT":
            row["text"], row["x"] = x.text, round(x.location[0], 4)
        else:
            t = x.transform
            row["offset_x"], row["scale"] = round(t.offset_x, 2), round(t.scale_x, 4)
            row["dir"] = x.directory if x.type == "IMAGE" else x.filepath
        laid.append(row)
    res = [comp.render.resolution_x, comp.render.resolution_y]
    return result, {
        "strips": laid,
        "resolution": res,
        "frames": [comp.frame_start, comp.frame_end],
        "shown": shown,
    }


def engine_values(s) -> dict:
    return {
        "steps": s.steps,
        "segment_frames": s.segment_frames,
        "guidance_scale": round(s.guidance_scale, 4),
    }


class Layout:
    """Records what the sidebar draws: the properties and operators it shows."""

    def __init__(self, seen: list):
        object.__setattr__(self, "seen", seen)

    def __setattr__(self, name, value):  # enabled, scale_y...
        pass

    def prop(self, _data, name, **_kw):
        self.seen.append(name)

    def operator(self, idname, **_kw):
        self.seen.append(idname)
        return Layout([])

    def __getattr__(self, _name):
        return lambda *_a, **_kw: Layout(self.seen)


def drawn(sidebar) -> list:
    seen: list = []
    sidebar.draw_panel(Layout(seen), bpy.context)
    return seen


def run(a):
    install(a["zip"])
    configure(a)
    builder = __import__(MODULE + ".wan_animate_blender.blender.job_builder", fromlist=["job_builder"])
    api = __import__(MODULE + ".wan_animate_blender.api", fromlist=["api"])
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    scene = build_scene()
    # Nine frames of the monkey moving across the camera's view.
    monkey = next(o for o in scene.objects if o.type == "MESH")
    scene.frame_start, scene.frame_end = 1, 9
    for f, x in ((1, -1.0), (9, 1.0)):
        monkey.location.x = x
        monkey.keyframe_insert("location", frame=f)
    s = scene.wan_animate
    out = {"wan_defaults": engine_values(s)}

    # Switching the engine: the values left at the old engine's defaults follow it.
    s.engine = "wan-animate-2"
    out["animate2_defaults"] = engine_values(s)
    sent = builder.job_settings(scene, (160, 120))
    out["sent"] = {k: getattr(sent, k) for k in ("engine", "steps", "segment_frames", "guidance_scale")}
    s.engine = "wan-animate-2-distilled"
    out["distilled_defaults"] = engine_values(s)
    s.steps = 7
    s.engine = "wan-animate-2"
    out["changed_kept"] = engine_values(s)
    shot = api.Shot("sh", clip=a["clip"], engine="wan-animate-2-distilled")
    out["shot_settings"] = {
        k: shot.settings()[k] for k in ("engine", "steps", "segment_frames", "guidance_scale")
    }

    # Replace Performer is refused with the reason, before anything is read.
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    plate = coll.new_movie(name="plate", filepath=a["clip"], channel=1, frame_start=1)
    ed.active_strip = plate
    sidebar = __import__(MODULE + ".panels.sidebar", fromlist=["sidebar"])
    out["drawn_animate2"] = drawn(sidebar)
    s.engine = "wan-animate"
    out["drawn_wan"] = drawn(sidebar)
    s.engine = "wan-animate-2"
    try:  # an operator reporting an error raises in background mode
        out["replace_result"] = sorted(bpy.ops.wan_animate.replace_performer())
    except RuntimeError as exc:
        out["replace_result"] = ["CANCELLED"]
        out["replace_report"] = str(exc)
    out["replace_status"] = s.status
    coll.remove(plate)

    # Generate on a short clip, at the tiny model's pace (the window and guidance as defaulted).
    s.quality, s.steps, s.prompt = "preview", 2, "a monkey waves"
    s.clip_path = a["short_clip"]
    # Left on for Wan2.2-Animate jobs: settings Animate-2 has no use for stay behind.
    bpy.context.preferences.addons[MODULE].preferences.fp8 = True
    s.step_cache = 0.1
    before = {x.name for x in strips(scene)}
    out["generate_result"] = sorted(bpy.ops.wan_animate.generate())
    bpy.context.preferences.addons[MODULE].preferences.fp8 = False
    s.step_cache = 0.0
    out["generate_status"] = s.status
    out["generate_strips"] = new_strips(scene, before)

    out["armatures"] = [o.name for o in scene.objects if o.type == "ARMATURE"]

    # The same shot by Wan2.2-Animate (one step, a short window), then both takes compared.
    t0 = time.perf_counter()
    a2_strip = next(x for x in strips(scene) if x.name not in before)
    s.engine = "wan-animate"
    s.steps, s.segment_frames = 1, 9
    before_wan = {x.name for x in strips(scene)}
    out["wan_result"] = sorted(bpy.ops.wan_animate.generate())
    out["wan_status"] = s.status
    wan_strip = next(x for x in strips(scene) if x.name not in before_wan)
    out["compare_result"], out["compare"] = compare_takes(scene, [a2_strip, wan_strip])
    out["compare_seconds"] = time.perf_counter() - t0
    rigs = {o.name for o in scene.objects if o.type == "ARMATURE"}  # the Wan2.2 take's skeleton guide
    s.engine = "wan-animate-2"
    s.steps = 2

    # Generate from Animation: the nine frames rendered and used as the driving clip.
    before = {x.name for x in strips(scene)}
    out["animation_result"] = sorted(bpy.ops.wan_animate.generate_from_animation())
    out["animation_status"] = s.status
    out["animation_strips"] = new_strips(scene, before)
    out["resolution_after"] = [scene.render.resolution_x, scene.render.resolution_y]
    out["armatures_animation"] = [
        o.name for o in scene.objects if o.type == "ARMATURE" and o.name not in rigs
    ]
    # A take of another clip (the playblast) beside the clip's take: refused, saying why.
    playblast_strip = next(x for x in strips(scene) if x.name not in before)
    out["mixed_result"], out["mixed"] = compare_takes(scene, [a2_strip, playblast_strip])
    out["mixed_status"] = s.status
    # One Animate-2 take alone (the playblast's): the reference frames and the result, no skeleton.
    out["single_result"], out["single"] = compare_takes(scene, [playblast_strip])
    runtime.stop_backend()
    return out


main(run)
