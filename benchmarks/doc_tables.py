"""Benchmark tables written into the docs by the script that measures them.

A docs page holds a block per table, between two markers:

    <!-- measured: bench_people.py sha=ab12cd34 -->
    ...the table, its ratio lines, and the command, date and machine it was measured with...
    <!-- /measured -->

A benchmark run with ``--write-docs`` replaces the body of its own block (found by the script's
name and an optional block name, ``bench_preprocess.py:uhd``) and stores a digest of the new body
in the marker, so that tests/test_docs_figures.py can tell a hand edit from what the script wrote.
Standard library only: it runs in the backend's environment and in a bpy interpreter alike.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK_RE = re.compile(
    r"^<!-- measured: (?P<key>[\w.:-]+) sha=(?P<sha>[0-9a-f]*) -->\n(?P<body>.*?)<!-- /measured -->",
    re.S | re.M,
)
# A marker at the start of a line opens a block; one quoted inside a sentence does not.
OPEN_RE = re.compile(r"^<!-- measured:", re.M)
CLOSE_RE = re.compile(r"^<!-- /measured -->", re.M)
# The line every written body ends with; the test reads the date and machine back from it.
STAMP_RE = re.compile(
    r"^Written by `(?P<command>[^`]+)` on (?P<date>\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC, (?P<machine>.+)\.$"
)


@dataclass(frozen=True)
class Block:
    page: Path
    key: str
    sha: str
    body: str

    @property
    def script(self) -> str:
        return self.key.split(":", 1)[0]


def digest(body: str) -> str:
    return hashlib.sha256(body.replace("\r\n", "\n").encode()).hexdigest()[:8]


def doc_pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", root / "ARCHITECTURE.md", *sorted((root / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, m["key"], m["sha"], m["body"]) for m in BLOCK_RE.finditer(text)]


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _gpu_name() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
            if torch.backends.mps.is_available():
                return "Apple MPS"
        except Exception:  # a broken CUDA install must not lose the measured table
            pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
            if out.returncode == 0 and names:
                return ", ".join(names)
        except OSError:
            pass
    return None


def machine() -> str:
    """CPU model and cores, the load when measured (the figures move with it), and the GPU."""
    parts = [f"{_cpu_model()} ({os.cpu_count() or '?'} cores)", f"{platform.system() or 'unknown OS'}"]
    if hasattr(os, "getloadavg"):
        try:
            parts.append(f"load {os.getloadavg()[0]:.1f}")
        except OSError:
            pass
    parts.append(f"GPU: {_gpu_name() or 'none'}")
    return ", ".join(parts)


def add_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--write-docs",
        action="store_true",
        help="also write the tables into their blocks in docs/ (with the date and machine)",
    )


def command_line(argv: list[str] | None = None) -> str:
    """The script and its arguments as run, relative to the repository, without --write-docs."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0])
    try:
        shown = script.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        shown = script.name
    rest = [a for a in argv[1:] if a != "--write-docs"]
    return " ".join(["python", shown, *rest])


def render(body: str, argv: list[str] | None = None, when: datetime.datetime | None = None) -> str:
    when = when or datetime.datetime.now(datetime.UTC)
    stamp = f"Written by `{command_line(argv)}` on {when:%Y-%m-%d %H:%M} UTC, {machine()}."
    return body.strip("\n") + "\n\n" + stamp + "\n"


def write(page: str | Path, key: str, body: str, argv: list[str] | None = None) -> None:
    """Replace the body of block ``key`` in ``page`` (relative to the repository) with ``body``
    and the line naming the command, date and machine."""
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    found = [m for m in BLOCK_RE.finditer(text) if m["key"] == key]
    if len(found) != 1:
        raise SystemExit(
            f"{Path(page).as_posix()} has {len(found)} blocks '<!-- measured: {key} sha= -->' "
            "... '<!-- /measured -->'; add exactly one where the table belongs"
        )
    new = render(body, argv)
    m = found[0]
    block = f"<!-- measured: {key} sha={digest(new)} -->\n{new}<!-- /measured -->"
    path.write_text(text[: m.start()] + block + text[m.end() :], encoding="utf-8", newline="\n")
    print(f"wrote {key} into {Path(page).as_posix()}")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
