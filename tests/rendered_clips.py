"""Clips of mannequins rendered in Blender (tests/blender_scripts/render_people.py), written
as mp4 as an artist's reference would be, with each person's joints per frame as the answer
key: truth[frame][person][coco index] = (x, y) pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
from conftest import run_blender


def render_clip(
    tmp_path: Path, name: str, people: list[dict], width: int, height: int, frames: int, **scene
) -> tuple[Path, list[list[dict[int, list[float]]]]]:
    """``scene``: further render_people.py arguments (``distance`` of the camera)."""
    frames_dir = tmp_path / name
    r = run_blender(
        "4.2",
        "render_people.py",
        {
            "out_dir": str(frames_dir),
            "width": width,
            "height": height,
            "frames": frames,
            "people": people,
            **scene,
        },
        tmp_path,
    )
    assert len(r["frames"]) == frames
    clip = tmp_path / f"{name}.mp4"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for f in r["frames"]:
        out.write(cv2.imread(str(frames_dir / f)))
    out.release()
    truth = [[{int(k): v for k, v in person.items()} for person in frame] for frame in r["truth"]]
    return clip, truth
