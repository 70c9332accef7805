"""The marker files a model folder may hold, for every engine: where `download` records what it
fetched and `make-tiny-model` says the weights are random. The commands that write them (env/)
and the loaders that read them (model/, engines/) name them from here."""

from __future__ import annotations

import json
from pathlib import Path

SOURCE_FILE = "wan_animate_source.json"  # written by `download`: repo id and revision
TINY_MARKER = "wan_animate_tiny_model.json"  # written by `make-tiny-model`


def is_tiny_model(folder: Path) -> bool:
    """A tiny random test model: its frames are noise by design."""
    return (Path(folder) / TINY_MARKER).is_file()


def folder_source(folder: Path) -> dict:
    """The repo id and revision `download` fetched into ``folder``; empty for a local model."""
    path = Path(folder) / SOURCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
