"""The folders the add-on uses: its user folder in Blender's extension storage, and
the preferences' paths with their defaults filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from ...backend.protocol import active_env_python, default_model_dir
from .settings import ADDON_PACKAGE


def user_dir(sub: str) -> Path:
    return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path=sub, create=True))


def resolved_backend_python(p: Any) -> Path:
    if p.backend_python:
        return Path(bpy.path.abspath(p.backend_python))
    return active_env_python(user_dir("backend-env"))  # the environment set-up last put in use


def resolved_model_dir(p: Any) -> Path:
    return Path(bpy.path.abspath(p.model_dir)) if p.model_dir else default_model_dir()


def resolved_output_dir(p: Any) -> Path:
    return Path(bpy.path.abspath(p.output_dir)) if p.output_dir else user_dir("results")
