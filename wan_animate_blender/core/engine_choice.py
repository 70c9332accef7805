"""Which engine a shot runs on, and the settings that follow the engine (bpy-free).

The facts (modes, skeleton, prompt, guidance, rate, segment length, steps) live in the
protocol's ENGINE_FEATURES; the add-on reads them here, so the sidebar, the batch API and the
job builder agree with the backend."""

from __future__ import annotations

from typing import Any

from ...backend.protocol import ENGINE_FEATURES, ENGINE_LABELS, ENGINES

DEFAULT_ENGINE = ENGINES[0]
# Settings whose default depends on the engine: an artist who has not changed one gets the
# chosen engine's value (a base Animate-2 job at guidance 1.0 would run without CFG).
ENGINE_DEFAULT_NAMES = ("steps", "segment_frames", "guidance_scale")

_DESCRIPTIONS = {
    "wan-animate": "Driven by a skeleton read from the clip: replace mode with relighting, editable guides",
    "wan-animate-2": "Driven by the clip itself (no pose extraction), with a prompt; slow, best quality",
    "wan-animate-2-distilled": "Wan-Animate-2 in a few steps without guidance: fast",
}


def features(engine: str) -> dict[str, Any]:
    return ENGINE_FEATURES[engine]


def label(engine: str) -> str:
    return ENGINE_LABELS[engine]


def enum_items() -> list[tuple[str, str, str]]:
    return [(e, ENGINE_LABELS[e], _DESCRIPTIONS.get(e, "")) for e in ENGINES]


def engine_defaults(engine: str) -> dict[str, Any]:
    f = ENGINE_FEATURES[engine]
    return {"steps": f["steps"], "segment_frames": f["segment_frames"], "guidance_scale": f["guidance_scale"]}


def switched_defaults(previous: str, engine: str, values: dict[str, Any]) -> dict[str, Any]:
    """The engine-dependent ``values`` after a switch from ``previous`` to ``engine``: each one
    still at the previous engine's default takes the new engine's; a changed one is kept."""
    old, new = engine_defaults(previous), engine_defaults(engine)
    out = {}
    for name in ENGINE_DEFAULT_NAMES:
        v = values[name]
        same = abs(float(v) - float(old[name])) < 1e-4 if isinstance(v, float) else v == old[name]
        out[name] = new[name] if same else v
    return out


def has_replace(engine: str) -> bool:
    return "replace" in ENGINE_FEATURES[engine]["modes"]


def replace_refusal(engine: str) -> str:
    return (
        f"{label(engine)} has no replace mode: it cannot put the character into a plate. Set Engine to "
        f"{label(DEFAULT_ENGINE)} for Replace Performer, or use Generate to animate the character."
    )
