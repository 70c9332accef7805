"""Inside the bpy wheel: time the add-on's real path, stage by stage. See bench_job.py."""

import importlib
import json
import sys
import time
from pathlib import Path

import bpy

MODULE = "bl_ext.user_default.wan_animate"


def main() -> None:
    a = json.loads(sys.argv[-1])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=a["zip"], repo="user_default", enable_on_install=True)
    bp = importlib.import_module(MODULE + ".wan_animate_blender.core.backend_process")
    js = importlib.import_module(MODULE + ".wan_animate_blender.core.job_session")
    seq = importlib.import_module(MODULE + ".wan_animate_blender.blender.sequencer_import")
    types = importlib.import_module(MODULE + ".backend.protocol")

    cfg = bp.BackendConfig(
        python=Path(a["backend_python"]),
        model_dir=Path(a["model_dir"]),
        data_dir=Path(a["data_dir"]),
        threads=1,
    )
    backend = bp.LocalBackend(cfg)
    t0 = time.perf_counter()
    backend.start()
    out = {"backend_start": time.perf_counter() - t0, "jobs": []}
    scene = bpy.context.scene
    for seed in (1, 2):
        settings = types.JobSettings(
            width=a["width"], height=a["height"], steps=a["steps"], segment_frames=a["segment"], seed=seed
        )
        req = types.JobRequest(settings=settings, output_dir=a["output_dir"], name=f"bench{seed}")
        t0 = time.perf_counter()
        st = js.JobSession(req, Path(a["character"]), Path(a["clip"]), local=backend, poll_s=0.05).run()
        wall = time.perf_counter() - t0
        assert st.ok, st.error
        t0 = time.perf_counter()
        seq.import_frames(scene, st.result_dir, f"bench{seed}", 1)
        imp = time.perf_counter() - t0
        job = json.loads((Path(st.result_dir) / "job.json").read_text())
        out["jobs"].append(
            {
                "wall": wall,
                "import": imp,
                "timings": job["timings_s"],
                "model_frames": job["model_frames"],
                "frames": job["frame_count"],
            }
        )
    backend.stop()

    t0 = time.perf_counter()
    strip = seq.import_frames(scene, Path(a["big_dir"]), "big", 1)
    out["import_300"] = {"seconds": time.perf_counter() - t0, "frames": len(strip.elements)}
    print("BENCH:" + json.dumps(out), flush=True)


main()
import os  # noqa: E402

os._exit(0)
