"""What lives for the Blender session: the local backend process and the job in
flight. Operators go through here; the poll function is both the UI timer and,
headless, what a script calls to advance a job."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from pathlib import Path

import bpy

from ...backend.protocol import CheckReply
from ..core.backend_process import BackendConfig, LocalBackend
from ..core.job_session import JobSession
from ..core.result_files import ResultFileError, read_job
from . import compat, guides, sequencer_import
from .settings import scene_settings


@dataclass
class RunningJob:
    session: JobSession
    scene_name: str
    strip_name: str
    frame_start: int
    above_channel: int
    mute_strip: str | None = None  # replace mode: the original, muted (kept) once the result is in
    strip: object = None
    imported: bool = False
    asked: bool = False  # the clip check's question has been put to the artist


CHECK_IMAGE = "Wan Animate clip check"


def show_check(report: CheckReply | None):
    """The clip check's annotated frame as an image (shown in any open Image Editor and the
    question's dialog): the artist sees whom the job will follow. Returns the image or None."""
    import base64
    import tempfile

    if report is None or not report.preview_png:
        return None
    path = Path(tempfile.gettempdir()) / "wan_animate_clip_check.png"
    path.write_bytes(base64.b64decode(report.preview_png))
    img = bpy.data.images.get(CHECK_IMAGE)
    if img is None:
        img = bpy.data.images.load(str(path), check_existing=False)
        img.name = CHECK_IMAGE
    else:
        img.filepath = str(path)
        img.reload()
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR" and area.spaces.active.image in (None, img):
                area.spaces.active.image = img
                area.tag_redraw()
    return img


_backend: LocalBackend | None = None
_job: RunningJob | None = None


def local_backend(cfg: BackendConfig) -> LocalBackend:
    """The session's backend, reused while its configuration is unchanged so the
    model stays warm between jobs."""
    global _backend
    if _backend is not None and _backend.cfg != cfg:
        _backend.stop()
        _backend = None
    if _backend is None:
        _backend = LocalBackend(cfg)
    return _backend


def stop_backend() -> None:
    global _backend
    if _backend is not None:
        _backend.stop()
        _backend = None


# Quitting Blender does not always unregister add-ons; the backend must not outlive it.
atexit.register(stop_backend)


def current_job() -> RunningJob | None:
    return _job


def set_job(job: RunningJob | None) -> None:
    global _job
    _job = job


def start_job(job: RunningJob) -> None:
    """Run the job on a worker thread. With a UI a timer follows it; headless the
    caller advances it by calling poll_running_job() (timers never fire there)."""
    set_job(job)
    job.session.start()
    if not bpy.app.background:
        bpy.app.timers.register(poll_running_job, first_interval=0.1)


def sync_ui(job: RunningJob) -> None:
    scene = bpy.data.scenes.get(job.scene_name)
    if scene is None:
        return
    st = job.session.state
    s = scene_settings(scene)
    s.progress = 100.0 * st.progress
    eta = f" - about {st.eta_s:.0f} s left" if st.eta_s else ""
    s.status = (st.error or st.message) if st.finished else f"{st.stage}{eta}"
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "SEQUENCE_EDITOR"):
                area.tag_redraw()


def finish(job: RunningJob):
    """Import the result once, on the main thread. Returns the strip or None."""
    st = job.session.state
    scene = bpy.data.scenes.get(job.scene_name)
    if job.imported or not st.ok or scene is None or st.result_dir is None:
        return job.strip
    # Undo step before the change so that Ctrl+Z returns to the edit as it was.
    bpy.ops.ed.undo_push(message="Wan Animate: before import")
    job.strip = sequencer_import.import_frames(
        scene, Path(st.result_dir), job.strip_name, job.frame_start, job.above_channel
    )
    job.imported = True
    if job.mute_strip:
        original = compat.all_strips(scene.sequence_editor).get(job.mute_strip)
        if original is not None:
            original.mute = True
    st.stage = "imported"
    st.message = f"Imported {st.frame_count} frames as '{job.strip.name}' (channel {job.strip.channel})"
    if scene.camera is not None and (Path(st.result_dir) / "keypoints.json").is_file():
        try:
            guide = guides.build_guides(
                scene, Path(st.result_dir), job.frame_start, f"Guides {job.strip.name}"
            )
            job.strip["wan_animate_guides"] = guide.name
            st.message += f"; skeleton guide '{guide.name}'"
        except Exception as exc:  # noqa: BLE001 - the frames are in; a guide problem must not undo that
            st.message += f"; no skeleton guide ({exc})"
    clip_fps = _clip_fps(Path(st.result_dir))
    scene_fps = scene.render.fps / scene.render.fps_base
    # A replacement keeps its movie strip's rate on purpose (frame for frame); no note then.
    if clip_fps and abs(clip_fps - scene_fps) > 0.01 and job.mute_strip is None:
        # Movie strips play frame by frame whatever the scene's rate; the result keeps real time.
        clip_s, scene_s = _fps_text(clip_fps), _fps_text(scene_fps)
        st.message += (
            f"\nThe clip runs at {clip_s} fps and the scene at {scene_s} fps: the result keeps the clip's "
            f"duration, a movie strip of the clip does not. Set the scene to {clip_s} fps to line them up."
        )
    return job.strip


def _fps_text(fps: float) -> str:
    return f"{fps:.2f}".rstrip("0").rstrip(".")


def _clip_fps(result_dir: Path) -> float | None:
    try:
        return float(read_job(result_dir)["inputs"]["clip"]["fps"])
    except (ResultFileError, TypeError):  # no clip: motion from a Blender animation
        return None


def ask_about_check(report: CheckReply | None) -> None:
    """Continue or Cancel, in a dialog over the first window; the session waits for the
    answer before it submits the job. A timer has no window of its own, so one is lent; if the
    dialog cannot open, the sidebar's Continue and Cancel buttons (shown while a job asks) stay."""
    try:
        show_check(report)
        windows = list(getattr(bpy.context.window_manager, "windows", []))
        if windows:
            win = windows[0]
            with bpy.context.temp_override(window=win, screen=win.screen):
                bpy.ops.wan_animate.clip_check_answer("INVOKE_DEFAULT")
    except Exception as exc:  # noqa: BLE001 - the timer must live on; the sidebar still asks
        print(f"Wan Animate: the clip check's dialog could not open ({exc}); answer in the sidebar")


def poll_running_job() -> float | None:
    """Timer callback: mirror progress into the UI; import when done."""
    job = _job
    if job is None:
        return None
    sync_ui(job)
    st = job.session.state
    if st.asking and not job.asked:
        job.asked = True
        ask_about_check(st.check)
    if not st.finished:
        return 0.25
    try:
        if finish(job) is not None:
            bpy.ops.ed.undo_push(message="Wan Animate: import result")
    except Exception as exc:  # noqa: BLE001 - shown in the panel, never a traceback popup
        job.session.state.error = f"Import failed: {exc}"
        job.session.state.ok = False
    sync_ui(job)
    set_job(None)
    return None
