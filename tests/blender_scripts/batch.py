"""A batch of shots through the Python API, one of them bad."""

import bpy
from harness import MODULE, build_scene, configure, install, main, strips


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    scene.render.fps, scene.render.fps_base = 30, 1.001
    api = __import__(MODULE + ".wan_animate_blender.api", fromlist=["api"])
    shots = [
        api.Shot("sh010", clip=a["clip"], quality="preview", steps=1, segment_frames=33),
        api.Shot("sh020", clip=a["missing"], quality="preview", steps=1, segment_frames=33),
        api.Shot("sh030", clip=a["no_person"], quality="preview", steps=1, segment_frames=33),
        api.Shot(
            "sh040",
            clip=a["clip"],
            character=a["character"],
            quality="preview",
            steps=1,
            seed=7,
            segment_frames=33,
            frame_start=50,
        ),
    ]
    lines = []
    results = api.run_batch(shots, on_progress=lines.append)
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    backends = 1 if runtime._backend is not None else 0
    runtime.stop_backend()
    return {
        "results": [r.__dict__ for r in results],
        "strips": sorted(
            (x.name, x.frame_start, len(x.elements)) for x in strips(scene) if x.type == "IMAGE"
        ),
        "progress_lines": len(lines),
        "saw_window": any("window" in ln for ln in lines),
        "backends": backends,
        "bpy_version": list(bpy.app.version),
    }


main(run)
