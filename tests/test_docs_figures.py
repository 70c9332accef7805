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
from released_models import ANIMATE2_14B, WAN_ANIMATE_14B  # noqa: E402

PAGES = doc_tables.doc_pages(ROOT)
BLOCKS = [b for page in PAGES for b in doc_tables.blocks(page)]


def block_id(block: doc_tables.Block) -> str:
    return f"{block.page.relative_to(ROOT).as_posix()}:{block.key}"


def test_every_marker_opens_a_whole_block():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        opened = len(doc_tables.OPEN_RE.findall(text))
        closed = len(doc_tables.CLOSE_RE.findall(text))
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
    lines = block.body.rstrip("\n").splitlines()
    assert lines, f"{block_id(block)} is empty: run benchmarks/{block.script} with --write-docs"
    last = lines[-1]
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


# Figures outside the blocks, each computed by the code that the page says gives it.

GIB = 1024**3


def flat(page: str) -> str:
    """The page's text with line breaks and runs of spaces as single spaces (sentences wrap)."""
    return " ".join((ROOT / page).read_text(encoding="utf-8").split())


def figures(page: str, pattern: str) -> list[float]:
    found = re.search(pattern, flat(page))
    assert found, f"{page} no longer says /{pattern}/: update tests/test_docs_figures.py with its new wording"
    return [float(g) for g in found.groups()]


def test_memory_table_is_the_memory_plan():
    from backend.model import memory_plan

    text = (ROOT / "docs" / "speed-and-memory.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+)x(\d+), (bf16|fp8) \|(.+)\|$", text, re.M)
    assert len(rows) >= 3, "docs/speed-and-memory.md lost its memory table"
    for w, h, dtype, cells in rows:
        need = memory_plan.needs(WAN_ANIMATE_14B, int(w), int(h), 77, fp8=dtype == "fp8")
        stated = [c.strip() for c in cells.split("|")]
        computed = [f"{need[mode] / GIB:.1f} GB" for mode in memory_plan.MODES]
        assert stated == computed, (
            f"{w}x{h} {dtype}: the page says {stated}, memory_plan.needs gives {computed}"
        )


def planned(need: int) -> float:
    """GB the plan asks the GPU to have: the estimate over the share it plans on (the headroom)."""
    from backend.model import memory_plan

    return need / memory_plan.HEADROOM / GIB


@pytest.mark.parametrize("page", ["README.md", "docs/setup-and-updates.md"])
def test_gpu_requirement_is_the_memory_plan_with_its_headroom(page):
    from backend.model import memory_plan

    sizes = WAN_ANIMATE_14B
    need = {
        (w, fp8): memory_plan.needs(sizes, w, h, 77, fp8)
        for w, h in ((832, 480), (1280, 720))
        for fp8 in (0, 1)
    }
    if page == "README.md":
        stated = figures(
            page,
            r"Everything on the GPU needs about (\d+) GB at 480p and (\d+) GB at 720p \((\d+) and (\d+) GB with FP8\)"
            r".*? bring that down to (\d+)-(\d+) GB with block offload and (\d+)-(\d+) GB layer by layer",
        )
        computed = [
            planned(need[832, 0]["resident"]),
            planned(need[1280, 0]["resident"]),
            planned(need[832, 1]["resident"]),
            planned(need[1280, 1]["resident"]),
            planned(need[832, 0]["group_offload"]),
            planned(need[1280, 0]["group_offload"]),
            planned(need[832, 0]["sequential_offload"]),
            planned(need[1280, 0]["sequential_offload"]),
        ]
    else:
        stated = figures(page, r"that is (\d+) GB at 480p and (\d+) GB at 720p in bf16")
        computed = [planned(need[832, 0]["resident"]), planned(need[1280, 0]["resident"])]
    assert all(abs(s - c) < 1 for s, c in zip(stated, computed, strict=True)), (
        f"{page} says {stated} GB; the memory plan with its headroom gives {[round(c, 1) for c in computed]}"
    )


def test_headroom_is_what_the_pages_say():
    from backend.model import memory_plan

    share = round((1 - memory_plan.HEADROOM) * 100)
    for page in ("README.md", "docs/speed-and-memory.md", "docs/using-blender.md"):
        said = set(re.findall(r"(\d+) % headroom", flat(page)))
        assert said == {str(share)}, f"{page} says {said} % headroom; memory_plan.HEADROOM leaves {share} %"


def test_animate2_memory_is_the_memory_plan():
    from backend.model import memory_plan

    sizes = ANIMATE2_14B
    stated = figures(
        "docs/using-blender.md",
        r"every layer: about (\d+) GB at 480p and (\d+) GB at 720p\. From the memory plan \((\d+)-frame windows"
        r".*?about (\d+) GB at 480p and (\d+) GB at 720p, streaming the blocks about (\d+) GB at 480p and (\d+) GB at 720p",
    )
    frames = int(stated[2])
    need = {w: memory_plan.animate2_needs(sizes, w, h, frames) for w, h in ((832, 480), (1280, 720))}
    computed = [
        memory_plan.reference_cache_bytes(sizes, 832, 480, frames) / GIB,
        memory_plan.reference_cache_bytes(sizes, 1280, 720, frames) / GIB,
        frames,
        planned(need[832]["resident"]),
        planned(need[1280]["resident"]),
        planned(need[832]["group_offload"]),
        planned(need[1280]["group_offload"]),
    ]
    assert all(abs(s - c) < 1 for s, c in zip(stated, computed, strict=True)), (
        f"docs/using-blender.md says {stated}; the memory plan gives {[round(c, 1) for c in computed]}"
    )


def full_animate2_config():
    """The released Animate-2 transformer's shape: diffusers' class defaults (bench_speed.py builds
    the full-size model from them)."""
    import inspect
    from types import SimpleNamespace

    from diffusers import WanAnimate2Transformer3DModel

    params = inspect.signature(WanAnimate2Transformer3DModel.__init__).parameters
    return SimpleNamespace(**{k: p.default for k, p in params.items() if k != "self"})


def test_animate2_flops_are_what_bench_speed_counts():
    import bench_speed

    cfg = full_animate2_config()
    count = {
        (w, h): bench_speed.animate2_flops(cfg, w, h, bench_speed.A2_FRAMES)
        for w, h in ((1280, 720), (832, 480))
    }

    def per_step(wh: tuple[int, int], guided: bool) -> float:
        c = count[wh]
        return (c["generation"] + (c["unconditional"] if guided else 0)) / 1e15

    big, small = (1280, 720), (832, 480)
    architecture = figures(
        "ARCHITECTURE.md",
        r"(\d+\.\d+) and (\d+\.\d+) PFLOP per step at 1280x720, (\d+\.\d+) and (\d+\.\d+) at 832x480, "
        r"plus a (\d+\.\d+) \((\d+\.\d+)\) PFLOP reference pass",
    )
    pflop = [
        per_step(big, True),
        per_step(big, False),
        per_step(small, True),
        per_step(small, False),
        count[big]["reference"] / 1e15,
        count[small]["reference"] / 1e15,
    ]
    assert architecture == [round(p, 2) for p in pflop], (architecture, pflop)
    speed = figures(
        "docs/speed-and-memory.md",
        r"one step at 1280x720 is (\d+\.\d+) PFLOP for the base and (\d+\.\d+) for the distilled "
        r"\((\d+\.\d+) and (\d+\.\d+) at 832x480\), plus a reference pass of (\d+\.\d+) PFLOP \((\d+\.\d+)\) "
        r"once per window: at an H100's (\d+) TFLOP/s at least (\d+\.\d+) s and (\d+\.\d+) s per step at 720p "
        r"\((\d+\.\d+) s and (\d+\.\d+) s at 480p\)",
    )
    rate = bench_speed.H100_RATE / 1e15
    floors = [pflop[0] / rate, pflop[1] / rate, pflop[2] / rate, pflop[3] / rate]
    assert speed == [round(p, 1) for p in pflop] + [round(rate * 1000)] + [round(f, 1) for f in floors], (
        speed,
        pflop,
        floors,
    )


def test_tiny_model_is_as_small_as_the_docs_say(tiny_model):
    stated_layers, stated_kb = figures(
        "docs/dependencies.md", r"(\d+) transformer layers, (\d+) KB\) \*\*through the same code path"
    )
    config = (tiny_model / "transformer" / "config.json").read_text()
    layers = int(re.search(r'"num_layers": (\d+)', config)[1])
    size = sum(p.stat().st_size for p in tiny_model.rglob("*") if p.is_file())
    assert (stated_layers, stated_kb) == (layers, round(size / 1000)), (
        f"docs/dependencies.md says {stated_layers} layers, {stated_kb} KB; "
        f"make_tiny_model gives {layers} layers, {size} bytes"
    )
