"""The weights, seen from the add-on without bpy: the download's progress lines turned into MB
and an ETA, and the model folder checked against the file list the download recorded.

The backend's ``python -m backend download`` prints ``progress: DONE / TOTAL bytes`` about once
a second and writes ``wan_animate_files.json`` into the model folder (backend/env/download.py):
``{"engine", "complete", "repos": {repo: commit}, "files": {path: {"size", "sha256", "repo"}}}``."""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ...backend.protocol import MODEL_FOLDER_PARTS

FILES_RECORD = "wan_animate_files.json"
ENGINE = "wan2.2-animate"
DIFFUSERS_REPO = "Wan-AI/Wan2.2-Animate-14B-Diffusers"
# The diffusers pipeline classes of the Wan family that are not Animate: a folder holding one of
# these was downloaded for another model.
OTHER_PIPELINES = {
    "WanPipeline": "Wan text-to-video",
    "WanImageToVideoPipeline": "Wan image-to-video",
    "WanVideoToVideoPipeline": "Wan video-to-video",
    "WanVACEPipeline": "Wan VACE",
}
REQUIRED_PARTS = MODEL_FOLDER_PARTS
PROGRESS = re.compile(r"^progress: (\d+) / (\d+) bytes")
RATE_WINDOW_S = 30.0
MB = 10**6


@dataclass
class DownloadProgress:
    """Bytes done of the total, and the recent rate for an ETA. Bytes already on disk when the
    download (re)started count as done but not towards the rate."""

    done: int = 0
    total: int = 0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def feed(self, line: str, now: float) -> bool:
        """Take one output line; True when it was a progress line."""
        m = PROGRESS.match(line.strip())
        if not m:
            return False
        self.done, self.total = int(m.group(1)), int(m.group(2))
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        return True

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def rate(self) -> float | None:
        """Bytes per second over the last half minute; None until there is a rate to speak of."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 and b1 > b0 else None

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None

    def text(self) -> str:
        """``1,234 of 82,000 MB (1.5 %), 45.2 MB/s, about 30 min left``."""
        if not self.total:
            return "Starting download"
        out = f"{self.done / MB:,.0f} of {self.total / MB:,.0f} MB ({100 * self.fraction:.1f} %)"
        if (rate := self.rate()) is not None:
            out += f", {rate / MB:.1f} MB/s"
        if (eta := self.eta_seconds()) is not None:
            out += f", about {format_duration(eta)} left"
        return out


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class FolderCheck:
    ok: bool
    lines: list[str]  # what the preferences show, the verdict first


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def wrong_engine(folder: Path) -> str | None:
    """What the folder holds instead of Wan2.2-Animate (Diffusers), or None."""
    index = folder / "model_index.json"
    if index.is_file():
        try:
            cls = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
        except (OSError, ValueError):
            return None  # a damaged index is reported as such by the file checks
        if cls in OTHER_PIPELINES:
            return f"{folder} holds {OTHER_PIPELINES[cls]} weights ({cls}), not Wan2.2-Animate"
        if cls and cls != "WanAnimatePipeline":
            return f"{folder} holds a {cls} model, not Wan2.2-Animate"
    elif (folder / "config.json").is_file() and any(folder.glob("models_t5_*.pth")):
        return f"{folder} holds the original (non-Diffusers) Wan release; the add-on reads {DIFFUSERS_REPO}"
    return None


def check_model_folder(folder: Path, hashes: bool = False) -> FolderCheck:
    """Every recorded file present with its size (and sha256 when ``hashes``), naming what is
    missing; a folder of another model is recognised; without a record, the parts are checked."""
    folder = Path(folder)
    fix = "Press Download weights (it resumes), or point Model folder at a complete copy."
    if not folder.is_dir():
        return FolderCheck(False, [f"The model folder {folder} does not exist.", fix])
    if other := wrong_engine(folder):
        return FolderCheck(
            False, [other + ".", f"Choose a folder with {DIFFUSERS_REPO} or download it here."]
        )
    record_path = folder / FILES_RECORD
    if not record_path.is_file():
        missing = [p for p in REQUIRED_PARTS if not (folder / p).exists()]
        if missing:
            return FolderCheck(False, [f"Missing: {', '.join(missing)}.", fix])
        return FolderCheck(
            True,
            [
                "All parts are there; sizes not checked (this folder was not downloaded by the add-on,"
                " so it has no file list).",
            ],
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files: dict[str, dict] = record["files"]
    except (OSError, ValueError, KeyError) as exc:
        return FolderCheck(False, [f"{record_path} cannot be read ({exc}).", fix])
    if record.get("engine", ENGINE) != ENGINE:
        return FolderCheck(
            False, [f"{folder} was downloaded for the engine {record['engine']!r}, not {ENGINE}."]
        )
    missing, wrong_size, wrong_hash = [], [], []
    for name, meta in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            missing.append(name)
        elif meta.get("size") is not None and path.stat().st_size != meta["size"]:
            wrong_size.append(f"{name} ({path.stat().st_size:,} of {meta['size']:,} bytes)")
        elif hashes and meta.get("sha256") and _sha256(path) != meta["sha256"]:
            wrong_hash.append(name)
    problems = []
    if missing:
        problems.append(f"Missing {len(missing)} of {len(files)} files: {', '.join(missing)}")
    if wrong_size:
        problems.append(f"Wrong size: {', '.join(wrong_size)}")
    if wrong_hash:
        problems.append(f"Damaged (sha256 differs): {', '.join(wrong_hash)}")
    if problems:
        return FolderCheck(False, [*problems, fix])
    total = sum(m.get("size") or 0 for m in files.values())
    checked = "sizes and sha256" if hashes else "sizes"
    return FolderCheck(True, [f"All {len(files)} files present ({total / MB:,.0f} MB), {checked} match."])
