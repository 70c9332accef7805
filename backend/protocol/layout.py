"""Where things live on disk, which the add-on and the backend must agree on: the data and model
folders per platform, the backend's environments and the pointer to the one in use, and what a
model folder must hold."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The exit code of a backend that found its data folder in use by another backend.
FOLDER_IN_USE_EXIT = 3
# What a Wan2.2-Animate model folder (diffusers layout) must hold: the backend's check before a
# job and the add-on's Check button read the same list.
MODEL_FOLDER_PARTS = (
    "model_index.json",
    "transformer",
    "vae",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "scheduler",
)


# Default locations, per platform: the add-on and the backend must agree on them.
def default_data_dir() -> Path:
    if env := os.environ.get("WAN_ANIMATE_DATA"):
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "wan-animate-backend"


def default_model_dir() -> Path:
    return default_data_dir() / "models" / "Wan2.2-Animate-14B-Diffusers"


def venv_python(venv: Path) -> Path:
    return Path(venv) / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


# The backend's environments, kept side by side by ``python -m backend setup --root ROOT``
# (backend/env/env_layout.py): ``ROOT/current.json`` names the one in use ("envs/<name>") and the
# one kept for a rollback. "." is a ROOT that is itself a venv (set up before this layout).
ENV_POINTER = "current.json"
LEGACY_ENV = "."


def env_pointer(root: Path) -> tuple[str | None, str | None]:
    """(the environment in use, the one a rollback returns to), as names under ``root``."""
    try:
        data = json.loads((Path(root) / ENV_POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    current = data.get("current")
    if current is None and venv_python(Path(root)).is_file():
        current = LEGACY_ENV
    return current, data.get("previous")


def env_folder(root: Path, name: str) -> Path:
    return Path(root) if name == LEGACY_ENV else Path(root) / name


def active_env_python(root: Path) -> Path:
    """The Python of the environment in use (the in-place venv's path when there is none yet)."""
    current = env_pointer(root)[0]
    return venv_python(env_folder(root, current) if current else Path(root))
