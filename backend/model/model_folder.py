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


def folder_problem(
    folder: Path, what: str, parts: tuple[str, ...], configs: list[str], fix: str
) -> str | None:
    """What is wrong with a model folder, naming the file and ``fix``; None when it looks whole.
    ``what`` names the folder ("The model folder"), ``parts`` are the entries it must hold,
    ``configs`` the JSON files (relative) that must parse."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{what} {folder} does not exist. {fix}"
    missing = [p for p in parts if not (folder / p).exists()]
    if missing:
        return f"{what} {folder} is incomplete (missing {', '.join(missing)}). {fix}"
    for cfg in (folder / c for c in configs):
        if not cfg.is_file():
            return f"{cfg} is missing: the download did not finish. {fix}"
        try:
            json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"{cfg} cannot be read ({exc}): the file is damaged. Delete it and download again. {fix}"
    return None
