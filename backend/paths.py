"""Default locations of the backend's data, per platform (stdlib only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


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
