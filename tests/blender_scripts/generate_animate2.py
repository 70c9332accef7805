"""Wan-Animate-2 from the sidebar: the engine's defaults, Replace Performer refused, Generate
on a short clip, and Generate from Animation (a playblast of an animated object)."""

import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, configure, install, main, strips


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
    before = {x.name for x in strips(scene)}
    out["generate_result"] = sorted(bpy.ops.wan_animate.generate())
    out["generate_status"] = s.status
    out["generate_strips"] = new_strips(scene, before)

    # Generate from Animation: the nine frames rendered and used as the driving clip.
    before = {x.name for x in strips(scene)}
    out["animation_result"] = sorted(bpy.ops.wan_animate.generate_from_animation())
    out["animation_status"] = s.status
    out["animation_strips"] = new_strips(scene, before)
    out["resolution_after"] = [scene.render.resolution_x, scene.render.resolution_y]
    out["armatures"] = [o.name for o in scene.objects if o.type == "ARMATURE"]
    runtime.stop_backend()
    return out


main(run)
