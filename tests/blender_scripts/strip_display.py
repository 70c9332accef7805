"""Strips rendered frame by frame as this Blender shows them, with what the installed add-on
hands the backend for each: a movie strip's clip settings (Replace Performer's, Generate's
from a strip), an image strip's frames as written for the job."""

from pathlib import Path

import bpy
from harness import MODULE, compat, install, main


def run(a):
    mod = install(a["zip"])
    inputs = __import__(MODULE + ".wan_animate_blender.blender.inputs", fromlist=["inputs"])
    del mod
    out = []
    for n, spec in enumerate(a["strips"]):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        # Standard view: the movie's pixels unchanged, so frames can be compared to the file's.
        scene.view_settings.view_transform = "Standard"
        scene.render.fps, scene.render.fps_base = 30, 1.0
        ed = scene.sequence_editor_create()
        coll = ed.strips if hasattr(ed, "strips") else ed.sequences
        strip = coll.new_movie(
            name="plate",
            filepath=spec["clip"],
            channel=1,
            frame_start=spec["frame_start"],
            fit_method="ORIGINAL",
        )
        strip.frame_offset_start, strip.frame_offset_end = spec["trim_start"], spec["trim_end"]
        el = strip.elements[0]
        # The frame as this Blender sizes it (upright or as stored), unscaled.
        scene.render.resolution_x, scene.render.resolution_y = el.orig_width, el.orig_height
        scene.render.resolution_percentage = 100
        scene.frame_start, scene.frame_end = compat().strip_start(strip), compat().strip_end(strip) - 1
        scene.render.image_settings.file_format = "PNG"
        scene.render.filepath = str(Path(a["renders"]) / f"strip{n}_####")
        bpy.ops.render.render(animation=True)
        frames = range(scene.frame_start, scene.frame_end + 1)
        out.append(
            {
                "renders": [bpy.path.abspath(scene.render.frame_path(frame=t)) for t in frames],
                "settings": inputs.strip_clip_settings(strip),
                "fps": strip.fps,
                "length": strip.frame_duration,
            }
        )
    return {
        "version": list(bpy.app.version),
        "strips": out,
        "images": [image_strip(a, inputs, n) for n in (0, 1)],
    }


def _write_exr_sequence(folder: Path) -> list[str]:
    """Linear frames as a renderer writes them: a left-to-right ramp from 0 to 4 (highlights
    well over 1), a different tint per frame."""
    names = []
    w, h = 64, 48
    for n, tint in enumerate(((1.0, 0.6, 0.3), (0.3, 0.8, 1.0), (1.0, 1.0, 1.0))):
        img = bpy.data.images.new(f"exr{n}", w, h, float_buffer=True)
        px = []
        for _y in range(h):
            for x in range(w):
                v = 4.0 * x / (w - 1)
                px += [v * tint[0], v * tint[1], v * tint[2], 1.0]
        img.pixels = px
        img.filepath_raw = str(folder / f"plate_{n + 1:04d}.exr")
        img.file_format = "OPEN_EXR"
        img.save()
        names.append(Path(img.filepath_raw).name)
        bpy.data.images.remove(img)
    return names


def image_strip(a, inputs, n: int) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene  # the factory view transform (AgX or Filmic): what artists see
    scene.render.fps, scene.render.fps_base = 24, 1.0
    folder = Path(a["renders"]) / f"sequence{n}"
    folder.mkdir(exist_ok=True)
    if n == 0:
        names = _write_exr_sequence(folder)
    else:
        names = [Path(f).name for f in a["png16"]]
        folder = Path(a["png16"][0]).parent
    ed = scene.sequence_editor_create()
    coll = ed.strips if hasattr(ed, "strips") else ed.sequences
    strip = coll.new_image(
        name="plate", filepath=str(folder / names[0]), channel=1, frame_start=1, fit_method="ORIGINAL"
    )
    for name in names[1:]:
        strip.elements.append(name)
    compat().set_strip_duration(strip, len(names))
    ed.active_strip = strip
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, len(names)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(Path(a["renders"]) / f"image{n}_####")
    bpy.ops.render.render(animation=True)
    renders = [bpy.path.abspath(scene.render.frame_path(frame=t)) for t in range(1, len(names) + 1)]
    clip, start, channel = inputs.reference_from_strip(scene)
    return {
        "renders": renders,
        "clip": str(clip),
        "start": start,
        "view": scene.view_settings.view_transform,
        "scene_fps": scene.render.fps / scene.render.fps_base,
    }


main(run)
