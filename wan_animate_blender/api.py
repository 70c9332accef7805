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

A Shot takes every setting the sidebar has, under JobSettings' names, e.g.

    api.Shot("sh030", clip="/shots/sh030/ref.mp4", character="/chars/hero.png",
             retarget="off", estimator="mediapipe", person=(0.3, 0.5),
             memory_mode="group_offload", step_cache=0.1,
             loras=[("/loras/lightx2v.safetensors", 1.0)], steps=6)
    api.Shot("sh040", clip="/shots/sh040/ref.mp4", engine="wan-animate-2",
             prompt="seen from the left")   # Wan-Animate-2's steps, window and guidance

A cast replaces several performers of the clip, each by its own character, in one job (one
replace pass per member, in order; Wan2.2-Animate only):

    api.Shot("sh050", clip="/shots/sh050/ref.mp4", cast=[
        api.CastMember(pick=(0.3, 0.6), character="/chars/hero.png"),
        api.CastMember(pick=(0.7, 0.55), person_frame=40, character="/chars/villain.png"),
    ])

A Shot's settings are its own (the defaults below), not the scene's sidebar; speed and
memory settings left at None come from the add-on preferences, as in the sidebar. New
fields go at the end, so shots written positionally keep their meaning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import engine_choice


@dataclass
class CastMember:
    """One performer of a cast: a point on them (x, y, 0..1 of the frame) on movie frame
    ``person_frame`` (0 = its first), and the character that replaces them (None: a still
    rendered from the scene's active camera)."""

    pick: tuple[float, float]
    person_frame: int = 0
    character: str | None = None


@dataclass
class Shot:
    name: str
    clip: str
    character: str | None = None  # None: render a still from the scene's active camera
    quality: str = "480p"  # "preview", "480p" or "720p"
    steps: int | None = None  # None: the engine's default (20 for Wan2.2-Animate)
    seed: int = 42
    segment_frames: int | None = None  # None: the engine's default (77 for Wan2.2-Animate)
    overlap: int = 1
    colour_match: bool = True  # hold colours steady across windows
    frame_start: int | None = None  # None: the scene's start frame
    step_cache: float = 0.0  # 0: off
    loras: list[tuple[str, float]] = field(default_factory=list)  # (safetensors path, strength)
    # "auto": the performer's skeleton takes the character's proportions when the image
    # shows a body; "off": as performed ("on" insists); a bool works as the sidebar's box.
    retarget: str | bool = "auto"
    estimator: str = "auto"  # "auto", "vitpose" or "mediapipe"
    person: tuple[float, float] | None = None  # (x, y) 0..1 on the performer; None: the largest
    relight_strength: float = 1.0  # replace mode's relighting LoRA (0: off)
    relight_lora: str = ""  # empty: relighting_lora.ckpt in the model folder
    # None: the add-on preferences' value.
    memory_mode: str | None = None
    attention: str | None = None
    compile: bool | None = None
    fp8: bool | None = None
    # An exact output size (multiples of 16) instead of the one planned from quality.
    width: int | None = None
    height: int | None = None
    # The movie frame (0 = its first) ``person`` was picked on: the performer is followed from
    # the first frame they appear in, whichever frame they were picked on.
    person_frame: int = 0
    # "wan-animate" (Wan2.2-Animate), "wan-animate-2" or "wan-animate-2-distilled".
    engine: str = "wan-animate"
    prompt: str = ""  # empty: the engine's own
    guidance_scale: float | None = None  # None: the engine's default (3.0 for base Wan-Animate-2)
    sampler: str = "dpm++"  # Wan2.2-Animate: "dpm++" (the official generate's default) or "unipc"
    # Several performers replaced in one job (replace mode), one CastMember each; empty: none.
    cast: list[CastMember] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """The shot's settings as job_builder.job_settings keywords."""
        if self.engine not in engine_choice.ENGINES:
            raise ValueError(f"engine must be one of {', '.join(engine_choice.ENGINES)}, not {self.engine!r}")
        out = {k: getattr(self, k) for k in _SETTINGS}
        out.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        for k, v in engine_choice.engine_defaults(self.engine).items():
            out[k] = v if getattr(self, k) is None else getattr(self, k)
        if self.cast:
            out["mode"] = "replace"
        return out


_SETTINGS = (
    "engine",
    "prompt",
    "quality",
    "seed",
    "overlap",
    "colour_match",
    "step_cache",
    "loras",
    "retarget",
    "estimator",
    "person",
    "person_frame",
    "relight_strength",
    "relight_lora",
    "sampler",
)
_OPTIONAL = ("width", "height", "memory_mode", "attention", "compile", "fp8")


@dataclass
class ShotResult:
    name: str
    ok: bool
    error: str | None = None
    strip_name: str | None = None
    result_dir: str | None = None
    frame_count: int = 0
    # What the clip check found worth knowing (several people, a small face...), before the job.
    warnings: list[str] = field(default_factory=list)


def run_batch(
    shots: list[Shot], scene=None, on_progress: Callable[[str], None] | None = None, poll_s: float = 0.25
) -> list[ShotResult]:
    import bpy

    from .blender import inputs, job_builder, runtime
    from .blender.folders import user_dir

    scene = scene or bpy.context.scene
    context = bpy.context
    results: list[ShotResult | None] = [None] * len(shots)
    running: list[tuple[int, runtime.RunningJob]] = []
    for i, shot in enumerate(shots):
        try:
            clip = Path(bpy.path.abspath(shot.clip))
            if not clip.is_file():
                raise inputs.InputError(f"The reference clip was not found: {clip}")
            cast = [_member_character(scene, shot, n, m) for n, m in enumerate(shot.cast, 1)]
            if cast:
                character = Path(cast[0]["character_path"])
            elif shot.character:
                character = Path(bpy.path.abspath(shot.character))
                if not character.is_file():
                    raise inputs.InputError(f"The character image was not found: {character}")
            else:
                character = inputs.render_character_still(scene, user_dir("stills"), stem=shot.name)
            extra = {"cast": cast} if cast else {}
            settings = job_builder.job_settings(
                scene, job_builder.character_size(character), context, **shot.settings(), **extra
            )
            req = job_builder.job_request(context, settings, shot.name)
            session = job_builder.make_session(context, req, character, clip)
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
                        shots[i].name,
                        True,
                        None,
                        strip.name,
                        str(st.result_dir),
                        st.frame_count,
                        st.check_warnings,
                    )
                except Exception as exc:  # noqa: BLE001
                    results[i] = ShotResult(shots[i].name, False, f"Import failed: {exc}")
            else:
                results[i] = ShotResult(
                    shots[i].name, False, st.error or st.message, warnings=st.check_warnings
                )
            _say(
                on_progress,
                f"{shots[i].name}: {'done' if results[i].ok else 'failed: ' + str(results[i].error)}",
            )
        if running:
            time.sleep(poll_s)
    return [r for r in results if r is not None]


def _member_character(scene, shot: Shot, n: int, member: CastMember) -> dict[str, Any]:
    import bpy

    from .blender import inputs
    from .blender.folders import user_dir

    if member.character:
        character = Path(bpy.path.abspath(member.character))
        if not character.is_file():
            raise inputs.InputError(f"Cast member {n}: the character image was not found: {character}")
    else:
        character = inputs.render_character_still(scene, user_dir("stills"), stem=f"{shot.name}_cast{n}")
    return {
        "person": tuple(member.pick),
        "person_frame": member.person_frame,
        "character_path": str(character),
    }


def _say(cb: Callable[[str], None] | None, line: str) -> None:
    if cb is not None:
        cb(line)
