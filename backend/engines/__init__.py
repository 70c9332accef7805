"""Model families behind one seam (engine.py); the job flow picks one by name."""

from __future__ import annotations

from pathlib import Path

from .engine import Engine, EngineSource, Generated, PreparedModel, ShotFrames

# The request's ``engine`` setting (protocol.ENGINES) -> the engine's own name in job.json.
ENGINES = ("wan2.2-animate", "wan-animate-2", "wan-animate-2-distilled")
_BY_SETTING = {"wan-animate": "wan2.2-animate"}


def make_engine(name: str, models, model_dir: Path) -> Engine:
    name = _BY_SETTING.get(name, name)
    if name == "wan2.2-animate":
        from .wan_animate import WanAnimateEngine

        return WanAnimateEngine(models, model_dir)
    if name in ("wan-animate-2", "wan-animate-2-distilled"):
        from .wan_animate_2 import WanAnimate2Engine

        return WanAnimate2Engine(name, models, model_dir)
    raise ValueError(f"unknown engine {name!r}; known: {ENGINES}")


class Engines:
    """Every engine of one backend, made when first asked for and kept (so each keeps its
    model warm between jobs)."""

    def __init__(self, models, model_dir: Path) -> None:
        self.models, self.model_dir = models, Path(model_dir)
        self._made: dict[str, Engine] = {}

    def get(self, name: str) -> Engine:
        name = _BY_SETTING.get(name, name)
        if name not in self._made:
            self._made[name] = make_engine(name, self.models, self.model_dir)
        return self._made[name]


__all__ = [
    "ENGINES",
    "Engine",
    "EngineSource",
    "Engines",
    "Generated",
    "PreparedModel",
    "ShotFrames",
    "make_engine",
]
