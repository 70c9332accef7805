"""Model families behind one seam (engine.py); the job flow picks one by name."""

from __future__ import annotations

from pathlib import Path

from .engine import Engine, Generated, PreparedModel

ENGINES = ("wan2.2-animate",)


def make_engine(name: str, models, model_dir: Path) -> Engine:
    if name == "wan2.2-animate":
        from .wan_animate import WanAnimateEngine

        return WanAnimateEngine(models, model_dir)
    raise ValueError(f"unknown engine {name!r}; known: {ENGINES}")


__all__ = ["ENGINES", "Engine", "Generated", "PreparedModel", "make_engine"]
