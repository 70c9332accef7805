"""The figures in README.md and docs/ are what the code gives now.

Benchmark tables live in blocks that the benchmark writes itself (``--write-docs``, see
benchmarks/doc_tables.py): each block must name a script that writes it, carry the command, date
and machine it was measured with, and be unchanged since (its digest). Figures outside the blocks
that a function of the code gives (memory plan estimates, FLOPs per step, the tiny model's size)
are computed here and compared with what the page says.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402

PAGES = doc_tables.doc_pages(ROOT)
BLOCKS = [b for page in PAGES for b in doc_tables.blocks(page)]


def block_id(block: doc_tables.Block) -> str:
    return f"{block.page.relative_to(ROOT).as_posix()}:{block.key}"


def test_every_marker_opens_a_whole_block():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        opened = text.count("<!-- measured:")
        closed = text.count("<!-- /measured -->")
        parsed = len(doc_tables.blocks(page))
        assert opened == closed == parsed, (
            f"{page.relative_to(ROOT)}: {opened} '<!-- measured: SCRIPT sha=... -->' markers, {closed} "
            f"'<!-- /measured -->', {parsed} well-formed blocks"
        )
    assert BLOCKS, "no measured block in README.md or docs/"


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_block_names_a_benchmark_that_writes_it(block):
    script = ROOT / "benchmarks" / block.script
    assert script.is_file(), f"{block_id(block)} names {block.script}, which is not in benchmarks/"
    source = script.read_text(encoding="utf-8")
    page = block.page.relative_to(ROOT).as_posix()
    assert f'"{page}"' in source and f'"{block.key}"' in source, (
        f"{block.script} never writes block {block.key} into {page}"
    )


@pytest.mark.parametrize("script", sorted({b.script for b in BLOCKS}))
def test_benchmark_accepts_write_docs(script):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--write-docs" in out.stdout


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_block_says_when_where_and_how_it_was_measured(block):
    last = block.body.rstrip("\n").splitlines()[-1]
    stamp = doc_tables.STAMP_RE.match(last)
    assert stamp, f"{block_id(block)} does not end with its 'Written by ... UTC, <machine>.' line"
    when = datetime.datetime.strptime(stamp["date"], "%Y-%m-%d %H:%M")
    assert datetime.datetime(2026, 1, 1) <= when <= datetime.datetime.now() + datetime.timedelta(days=1)
    assert re.search(r"\(\d+ cores\).*GPU: ", stamp["machine"]), stamp["machine"]
    assert stamp["command"].startswith(f"python benchmarks/{block.script}")


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_block_is_as_its_benchmark_wrote_it(block):
    assert doc_tables.digest(block.body) == block.sha, (
        f"{block_id(block)} was changed after benchmarks/{block.script} wrote it: re-run "
        f"benchmarks/{block.script} with --write-docs (with the arguments on its 'Written by' line) "
        "instead of editing the block"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_block_names_no_path_of_the_machine(block):
    assert not re.search(r"(/home/|/tmp/|/work/|/Users/|[A-Za-z]:\\)", block.body), block.body
