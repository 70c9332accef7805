"""The seam between a job and a model family.

The job flow (backend/job/) reads inputs, builds conditioning, drives the window loop
through progress and writes results; everything that depends on which model makes the
frames goes through an Engine: whether its model folder is whole, loading and placing
it for this job's settings, what conditioning it needs, how many windows a clip takes,
and making the frames window by window. A second model family is one more Engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

from ..protocol import JobSettings

# (window from 1, windows, steps done in it, decoding) -> None; raises to stop the job
StepHook = Callable[[int, int, int, bool], None]
# What the official code prompts with when none is given (custom prompts are discouraged upstream).
DEFAULT_PROMPT = "视频中的人在做动作"


@dataclass
class ShotFrames:
    """The job's conditioning as an engine builds its own inputs from it (``Engine.inputs``):
    PIL images made as they are read, each sequence at least one frame past the overlap."""

    reference: Any  # the character, fitted to the output size
    pose: Sequence  # the drawn skeleton per frame (empty for an engine without one)
    face: Sequence
    background: Sequence | None  # replace mode's plate and mask
    mask: Sequence | None
    driving: Sequence | None  # the clip's own frames, for an engine driven by video

    @property
    def frame_count(self) -> int:
        """How many frames drive the model."""
        return len(self.driving if self.driving is not None else self.pose)


@dataclass
class PreparedModel:
    """A model loaded and set up for one job's settings."""

    handle: Any  # the engine's own object (a loaded pipeline)
    device: str
    tiny: bool  # a tiny random test model: its frames are noise by design
    face_size: int  # side of the face crops the model reads; 0: it reads no face crops
    needs_pose: bool  # whether the model is driven by a drawn skeleton
    # Everything about the model that shapes the frames: a resumed job must match it.
    identity: list
    # What job.json reports about the model and how it ran (memory mode, attention, LoRAs...).
    report: dict[str, Any] = field(default_factory=dict)
    fps: float = 30.0  # the rate the model generates at (and reads its driving frames at)
    # A model driven by the clip's own frames (``needs_pose`` False): how it fits a clip frame
    # (RGB uint8) into width x height, by that model's own letterbox rule.
    fit_driving: Callable[[np.ndarray, int, int], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not self.needs_pose and self.fit_driving is None:
            raise TypeError("an engine driven by the clip's frames must say how it fits them (fit_driving)")


@dataclass
class Generated:
    frames: list  # uint8 RGB frames at the model's rate
    windows: int
    timings: dict[str, float]
    report: dict[str, Any]  # resumed windows, colour gains, skipped steps...


class Engine(Protocol):
    name: str

    def model_problem(self, model_dir: Path) -> str | None:
        """What is wrong with the model folder (naming the file and the fix), None if whole."""

    def prepare(self, settings: JobSettings, report: Callable[..., None]) -> PreparedModel: ...

    def count_windows(self, n_frames: int, settings: JobSettings) -> int: ...

    def inputs(self, shot: ShotFrames, settings: JobSettings) -> Any:
        """This engine's own inputs for ``generate``: only what it reads."""

    def generate(
        self,
        prepared: PreparedModel,
        inputs: Any,
        store: Any,
        on_step: StepHook,
        n_frames: int,
    ) -> Generated:
        """The ``n_frames`` frames at the model's rate, each window saved to ``store`` as it
        finishes (a re-run resumes after the saved ones)."""


class EngineSource(Protocol):
    """Where a job finds the engine its request names: the backend's Engines, or the cluster
    node's set that streams each finished window to the head."""

    def get(self, name: str) -> Engine: ...
