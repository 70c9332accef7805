"""The weights from the preferences: refused while Blender's online access is off, then
downloaded from a stand-in hub, stopped in the middle of a file, resumed, and checked."""

import time
from pathlib import Path

import bpy
from harness import MODULE, install, main


def check(hashes=False):
    try:
        result = sorted(bpy.ops.wan_animate.check_model(hashes=hashes))
    except RuntimeError:  # an ERROR report: the lines say why
        result = ["CANCELLED"]
    bs = __import__(MODULE + ".wan_animate_blender.blender.backend_setup", fromlist=["x"])
    return {"result": result, "lines": list(bs.CHECK_STATE["lines"])}


def run(a):
    install(a["zip"])
    bs = __import__(MODULE + ".wan_animate_blender.blender.backend_setup", fromlist=["x"])
    folders = __import__(MODULE + ".wan_animate_blender.blender.folders", fromlist=["x"])
    p = bpy.context.preferences.addons[MODULE].preferences
    p.backend_python, p.model_dir = a["backend_python"], a["model_dir"]
    out = {}

    bpy.context.preferences.system.use_online_access = False
    try:
        out["offline"] = sorted(bpy.ops.wan_animate.download_weights())
    except RuntimeError as exc:
        out["offline"], out["offline_error"] = ["CANCELLED"], str(exc)
    out["offline_started"] = Path(a["model_dir"]).exists()

    bpy.context.preferences.system.use_online_access = True
    out["online_access"] = bpy.app.online_access
    # What the button does in the UI (start and return), then Stop in the middle of the big file.
    bs.start_download(
        folders.resolved_backend_python(p), folders.resolved_model_dir(p), bs.download_log_path()
    )
    progress = bs.DOWNLOAD_STATE["progress"]
    deadline = time.monotonic() + 60
    while (
        bs.DOWNLOAD_STATE["running"] and progress.done < a["stop_after_bytes"] and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    out["while_running"] = {"stage": bs.DOWNLOAD_STATE["stage"], "running": bs.DOWNLOAD_STATE["running"]}
    out["stop"] = sorted(bpy.ops.wan_animate.cancel_download())
    bs.wait_download(30)
    out["stopped"] = {"stage": bs.DOWNLOAD_STATE["stage"], "done": progress.done, "total": progress.total}
    out["check_stopped"] = check()

    out["resume"] = sorted(bpy.ops.wan_animate.download_weights())
    out["resumed"] = {"stage": bs.DOWNLOAD_STATE["stage"], "done": bs.DOWNLOAD_STATE["progress"].done}
    out["check"] = check()
    out["check_sha256"] = check(hashes=True)

    damaged = Path(a["model_dir"]) / a["damage"]
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    out["check_damaged"] = check()
    out["check_damaged_sha256"] = check(hashes=True)
    damaged.unlink()
    out["check_missing"] = check()

    p.model_dir = a["other_engine_dir"]
    out["check_other_engine"] = check()
    return out


main(run)
