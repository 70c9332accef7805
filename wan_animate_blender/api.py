"""Python API for scripts and the console: generate many shots unattended.

    from bl_ext.user_default.wan_animate.wan_animate_blender import api
    results = api.run_batch([
        api.Shot("sh010", clip="/shots/sh010/ref.mp4"),                     # character: render the camera
        api.Shot("sh020", clip="/shots/sh020/ref.mp4", character="/chars/hero.png", seed=7),
    ], on_progress=print)
    for r in results:
        print(r.name, r.ok, r.error or r.strip_name)

All shots are submitted at once (the backend queues them and runs one at a time),
each result is imported as soon as it is done, and a shot that fails is reported in
its result while the others carry on. run_batch() blocks until every shot ends: use
it from `blender -b` or a script; in an open Blender it holds the UI while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Shot:
    name: str
    clip: str
    character: str | None = None  # None: render a still from the scene's active camera
    quality: str = "480p"
    steps: int = 20
    seed: int = 42
    segment_frames: int = 77
    overlap: int = 1
    colour_match: bool = True  # hold colours steady across windows
    frame_start: int | None = None  # None: the scene's start frame
    step_cache: float = 0.0  # 0: off
    loras: list[tuple[str, float]] = field(default_factory=list)  # (safetensors path, strength)


@dataclass
class ShotResult:
    name: str
    ok: bool
    error: str | None = None
    strip_name: str | None = None
    result_dir: str | None = None
    frame_count: int = 0


def run_batch(
    shots: list[Shot], scene=None, on_progress: Callable[[str], None] | None = None, poll_s: float = 0.25
) -> list[ShotResult]:
    import bpy

    from ..backend.protocol import JobRequest, JobSettings
    from ..operators.generate import _character_size, machine_settings, make_session
    from ..panels.preferences import prefs, resolved_output_dir, user_dir
    from .blender import inputs, runtime
    from .core.resolution import plan_output_size

    scene = scene or bpy.context.scene
    context = bpy.context
    results: list[ShotResult | None] = [None] * len(shots)
    running: list[tuple[int, runtime.RunningJob]] = []
    for i, shot in enumerate(shots):
        try:
            clip = Path(bpy.path.abspath(shot.clip))
            if not clip.is_file():
                raise inputs.InputError(f"The reference clip was not found: {clip}")
            if shot.character:
                character = Path(bpy.path.abspath(shot.character))
                if not character.is_file():
                    raise inputs.InputError(f"The character image was not found: {character}")
            else:
                character = inputs.render_character_still(scene, user_dir("stills"), stem=shot.name)
            width, height = plan_output_size(*_character_size(character), shot.quality)
            settings = JobSettings(
                width=width,
                height=height,
                steps=shot.steps,
                seed=shot.seed,
                segment_frames=shot.segment_frames,
                overlap=shot.overlap,
                colour_match=shot.colour_match,
                output_fps=scene.render.fps / scene.render.fps_base,
                step_cache=shot.step_cache,
                loras=[{"path": str(Path(bpy.path.abspath(p))), "strength": float(w)} for p, w in shot.loras],
                **machine_settings(prefs(context)),
            )
            settings.validate()
            req = JobRequest(
                settings=settings, output_dir=str(resolved_output_dir(prefs(context))), name=shot.name
            )
            session = make_session(context, req, character, clip)
        except Exception as exc:  # noqa: BLE001 - one bad shot must not stop the batch
            results[i] = ShotResult(shot.name, False, str(exc))
            _say(on_progress, f"{shot.name}: failed: {exc}")
            continue
        start = scene.frame_start if shot.frame_start is None else shot.frame_start
        job = runtime.RunningJob(session, scene.name, f"Wan {shot.name}", start, 0)
        session.start()
        running.append((i, job))

    last: dict[int, str] = {}
    while running:
        for i, job in list(running):
            st = job.session.state
            line = f"{shots[i].name}: {st.stage} {100 * st.progress:.0f}%"
            if last.get(i) != line:
                last[i] = line
                _say(on_progress, line)
            if not st.finished:
                continue
            running.remove((i, job))
            if st.ok:
                try:
                    strip = runtime.finish(job)
                    results[i] = ShotResult(
                        shots[i].name, True, None, strip.name, str(st.result_dir), st.frame_count
                    )
                except Exception as exc:  # noqa: BLE001
                    results[i] = ShotResult(shots[i].name, False, f"Import failed: {exc}")
            else:
                results[i] = ShotResult(shots[i].name, False, st.error or st.message)
            _say(
                on_progress,
                f"{shots[i].name}: {'done' if results[i].ok else 'failed: ' + str(results[i].error)}",
            )
        if running:
            time.sleep(poll_s)
    return [r for r in results if r is not None]


def _say(cb: Callable[[str], None] | None, line: str) -> None:
    if cb is not None:
        cb(line)
