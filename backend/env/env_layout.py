"""Where the backend's environments live and which one is in use.

A set-up root holds ``envs/<name>/`` (one venv each) and ``current.json``, which names the
environment in use and the one before it (kept for one rollback). The file is replaced
atomically, so the add-on never reads a half-written pointer, and a failed update never
touches it. A root made before this layout is itself a venv: it stays in use until the
first update, which keeps it as the rollback target (``"."``).

The add-on reads the pointer through the protocol (``active_env_python``); set-up writes it here."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..protocol import ENV_POINTER, active_env_python, env_folder, env_pointer, venv_python

POINTER = ENV_POINTER
ENVS = "envs"


@dataclass(frozen=True)
class Pointer:
    current: str | None
    previous: str | None


def read_pointer(root: Path) -> Pointer:
    return Pointer(*env_pointer(root))


env_dir = env_folder
active_python = active_env_python


def write_pointer(root: Path, pointer: Pointer) -> None:
    root = Path(root)
    tmp = root / (POINTER + ".tmp")
    tmp.write_text(json.dumps({"current": pointer.current, "previous": pointer.previous}), encoding="utf-8")
    os.replace(tmp, root / POINTER)  # atomic on one file system: readers see the old or the new


def switch_to(root: Path, name: str) -> Pointer:
    """Put ``name`` in use, keep the one it replaces for a rollback, delete older ones."""
    old = read_pointer(root)
    new = Pointer(name, old.current)
    write_pointer(root, new)
    prune(root, new)
    return new


def rollback(root: Path) -> Pointer:
    old = read_pointer(root)
    if not old.previous or not venv_python(env_dir(root, old.previous)).is_file():
        raise SystemExit(
            f"Nothing to roll back to in {root}: only the environment in use is kept "
            "(a rollback is possible once after each update)."
        )
    # The rolled-back-from environment stays as 'previous': a second rollback undoes the first.
    new = Pointer(old.previous, old.current)
    write_pointer(root, new)
    return new


def prune(root: Path, keep: Pointer) -> None:
    folder = Path(root) / ENVS
    if not folder.is_dir():
        return
    kept = {keep.current, keep.previous}
    for child in folder.iterdir():
        if child.is_dir() and f"{ENVS}/{child.name}" not in kept:
            shutil.rmtree(child, ignore_errors=True)
