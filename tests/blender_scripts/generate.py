"""The headless Generate path: scene -> rendered still -> real backend -> strip."""

import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, compat, configure, install, main, strips, wait_job


def run(a):
    install(a["zip"])
    configure(a)
    if a.get("remote_url"):
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.backend_mode, prefs.remote_url, prefs.remote_token = (
            "REMOTE",
            a["remote_url"],
            a["remote_token"],
        )
        prefs.backend_python = "/nonexistent/python"  # proves no local backend is started
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames, s.overlap = "preview", 2, 17, "1"
    if a.get("scene_fps"):
        scene.render.fps, scene.render.fps_base = a["scene_fps"]
    for k, v in a.get("settings", {}).items():
        setattr(s, k, v)
    prefs = bpy.context.preferences.addons[MODULE].preferences
    for k, v in a.get("prefs", {}).items():
        setattr(prefs, k, v)
    for path, strength, enabled in a.get("loras", []):
        assert bpy.ops.wan_animate.add_lora() == {"FINISHED"}
        lo = s.loras[-1]
        lo.path, lo.strength, lo.enabled = path, strength, enabled
    if a.get("loras"):
        # A row added and removed again leaves the others as they were.
        bpy.ops.wan_animate.add_lora()
        assert bpy.ops.wan_animate.remove_lora(index=len(s.loras) - 1) == {"FINISHED"}
    if a.get("reference_strip"):
        ed = scene.sequence_editor_create()
        coll = ed.strips if hasattr(ed, "strips") else ed.sequences
        ref = coll.new_movie(
            name="reference", filepath=a["clip"], channel=2, frame_start=a["reference_strip"]
        )
        ed.active_strip = ref
        s.clip_source = "STRIP"
    else:
        s.clip_path = a["clip"]
    if a.get("character"):
        s.character_source, s.character_image = "FILE", a["character"]
    before = {x.name for x in strips(scene)}

    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    if a.get("async_cancel"):
        builder = __import__(MODULE + ".wan_animate_blender.blender.job_builder", fromlist=["job_builder"])
        job = builder.generate_job(bpy.context)
        runtime.start_job(job)
        import time

        seen = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runtime.poll_running_job()
            seen.append(job.session.state.stage)
            if "window" in job.session.state.stage:
                break
            time.sleep(0.05)
        t0 = time.monotonic()
        bpy.ops.wan_animate.cancel()
        wait_job(runtime)
        state = job.session.state
        client = runtime._backend.client
        backend_state = client.status(state.job_id).state if state.job_id else None
        return {
            "stages": sorted(set(seen)),
            "cancelled": state.cancelled,
            "message": state.message,
            "backend_state": backend_state,
            "cancel_s": time.monotonic() - t0,
            "new_strips": sorted({x.name for x in strips(scene)} - before),
            "status": s.status,
        }
    if a.get("kill_backend_at"):
        builder = __import__(MODULE + ".wan_animate_blender.blender.job_builder", fromlist=["job_builder"])
        job = builder.generate_job(bpy.context)
        runtime.start_job(job)
        import time

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and a["kill_backend_at"] not in job.session.state.stage:
            runtime.poll_running_job()
            time.sleep(0.05)
        runtime._backend.proc.kill()
        wait_job(runtime)
        st = job.session.state
        return {
            "ok": st.ok,
            "error": st.error,
            "status": s.status,
            "new_strips": sorted({x.name for x in strips(scene)} - before),
        }

    result = bpy.ops.wan_animate.generate()
    out = {"op_result": sorted(result), "status": s.status, "new_strips": []}
    for x in strips(scene):
        if x.name in before:
            continue
        info = {
            "name": x.name,
            "type": x.type,
            "channel": x.channel,
            "frame_start": x.frame_start,
            "frame_final_duration": compat().strip_duration(x),
            "elements": len(x.elements),
            "directory": x.directory,
            "missing": [e.filename for e in x.elements if not (Path(x.directory) / e.filename).is_file()],
        }
        job_json = Path(x.directory) / "job.json"
        if job_json.is_file():
            info["job"] = json.loads(job_json.read_text())
        out["new_strips"].append(info)
    out["scene_fps"] = scene.render.fps / scene.render.fps_base
    out["scene_frame_start"] = scene.frame_start
    if a.get("save_blend"):
        bpy.ops.wm.save_as_mainfile(filepath=a["save_blend"])
    if a.get("second_run"):
        r2 = bpy.ops.wan_animate.generate()
        out["second"] = {
            "op_result": sorted(r2),
            "strips": sorted((x.name, x.channel, x.directory) for x in strips(scene)),
        }
    out["local_backend_started"] = runtime._backend is not None and runtime._backend.proc is not None
    runtime.stop_backend()
    return out


main(run)
