"""Sequence parallelism: the backend under torchrun gives the frames one process gives.

Two CPU processes talking gloo stand in for two GPUs talking NCCL: the plan, the token
reordering, the Ulysses all-to-all and the broadcast of each call's inputs are the same code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backend_proc import BackendProc, result_frames

from backend.model.sequence_parallel import check_layout, to_frame_major, to_rank_major
from backend.protocol import RequestError

SETTINGS = {"width": 64, "height": 48, "steps": 2, "segment_frames": 17, "overlap": 1, "clip_frames": 30}


def test_each_rank_holds_a_span_of_every_frame():
    frames, per_frame, world = 3, 8, 2
    tokens = torch.arange(frames * per_frame).view(1, -1, 1)
    ordered = to_rank_major(tokens, per_frame, world)
    rank0, rank1 = ordered.chunk(world, dim=1)
    # Rank 0: the first half of frame 0, of frame 1, of frame 2, in frame order.
    assert rank0.flatten().tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]
    assert rank1.flatten().tolist() == [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23]
    assert torch.equal(to_frame_major(ordered, per_frame, world), tokens)


def test_sizes_the_ranks_cannot_share_are_refused_with_what_to_change():
    check_layout(30 * 52, 40, 8, "ulysses")  # 832x480 on 8 GPUs
    with pytest.raises(RequestError, match="divide by 7"):
        check_layout(30 * 52, 40, 7, "ring")
    with pytest.raises(RequestError, match="heads"):
        check_layout(30 * 52, 40, 3, "ulysses")


def test_two_ranks_give_the_frames_one_process_gives(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    results = {}
    for ranks in (1, 2):
        b = BackendProc(
            backend_python,
            tmp_path / f"data{ranks}",
            tiny_model,
            ranks=ranks,
            extra_env={"WAN_ANIMATE_PARALLEL_CPU": "1"},
        )
        try:
            body = {
                "character_path": str(astronaut_png),
                "clip_path": str(carphone_clip),
                "settings": SETTINGS,
            }
            r = b.post("/v1/jobs", json=body)
            assert r.status_code == 201, r.text
            st, _ = b.wait(r.json()["id"], timeout=600)
            assert st["state"] == "done", (
                st,
                (tmp_path / f"data{ranks}" / "backend.log").read_text()[-3000:],
            )
            results[ranks] = result_frames(st["result_dir"])
            if ranks == 2:
                # The second job on the same ranks reuses the loaded, already parallel transformer.
                st2, _ = b.wait(b.post("/v1/jobs", json=body).json()["id"], timeout=600)
                assert st2["state"] == "done", st2
                assert np.array_equal(result_frames(st2["result_dir"]), results[2])
        finally:
            b.stop()
        if ranks == 2:
            assert b.proc.returncode == 0, (tmp_path / "data2" / "backend.log").read_text()[-3000:]
    one, two = results[1], results[2]
    assert one.shape == two.shape and len(one) == 30
    assert one.std() > 5  # a real picture, not a blank
    assert np.abs(one - two).max() <= 1
