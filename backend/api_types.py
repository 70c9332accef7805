"""Request and response shapes of the backend's HTTP API.

Stdlib only: the Blender add-on imports this module too, so both sides of the wire
share one definition."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

API_PREFIX = "/v1"
TOKEN_HEADER = "Authorization"
TOKEN_ENV = "WAN_ANIMATE_TOKEN"

MODES = ("animate", "replace")
OVERLAPS = (1, 5)
TERMINAL_STATES = ("done", "failed", "cancelled")
# How the model sits in accelerator memory, fastest first ("auto": the fastest that fits).
MEMORY_MODES = ("auto", "resident", "model_offload", "group_offload", "sequential_offload")
ATTENTION_CHOICES = (
    "auto",
    "sdpa",
    "sdpa_flash",
    "sdpa_cudnn",
    "sdpa_math",
    "flash_attn",
    "flash_attn_3",
    "sage",
)
# Pose estimators: "auto" is ViTPose when its models are in <model>/process_checkpoint, else mediapipe.
ESTIMATORS = ("auto", "vitpose", "mediapipe")
STAGES = ("queued", "loading_model", "preprocessing", "denoising", "decoding", "writing", "done")


class RequestError(ValueError):
    """A request the backend refuses; the message says what to change."""


@dataclass
class JobSettings:
    mode: str = "animate"
    width: int = 832
    height: int = 480
    steps: int = 20
    seed: int = 42
    segment_frames: int = 77
    overlap: int = 1
    guidance_scale: float = 1.0
    prompt: str = ""
    output_fps: float = 0.0  # 0: the clip's own rate
    clip_start: int = 0  # first clip frame used (a trimmed strip shows only part of its movie)
    clip_frames: int = 0  # how many clip frames from there; 0: to the end
    clip_speed: float = 1.0  # clip frames per output-rate frame (a retimed strip plays faster or slower)
    colour_match: bool = True  # match each window's colours to the previous one over the overlap
    estimator: str = "auto"
    # Animate mode: scale the performer's bones to the character's proportions ("auto": when
    # the character image shows enough of a body; "off": the performer's skeleton as is).
    retarget: str = "auto"
    # The performer to follow when several people are in the clip: a point [x, y] (0..1 of the
    # frame) on them in the first frame they appear; None: the largest person.
    person: list | None = None
    # Replace mode: the relighting LoRA at this strength (0: off). An empty path takes
    # <model>/relighting_lora.ckpt, which `python -m backend download` fetches.
    relight_strength: float = 1.0
    relight_lora: str = ""
    # Speed and memory; each changes only how fast and in how much memory, except where noted.
    memory_mode: str = "auto"
    attention: str = "auto"
    compile: bool = False  # torch.compile the transformer blocks (the first window pays for it)
    fp8: bool = False  # transformer weights stored in fp8, computed in bf16: half the memory, close output
    step_cache: float = 0.0  # reuse a step's output when the predicted change is below this; 0 off
    # [{"path": ".../lora.safetensors", "strength": 1.0}], paths on the backend's machine.
    loras: list = field(default_factory=list)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise RequestError(f"mode must be one of {MODES}, not {self.mode!r}")
        if not isinstance(self.colour_match, bool):
            raise RequestError(f"colour_match must be true or false, got {self.colour_match!r}")
        if self.retarget not in ("auto", "on", "off"):
            raise RequestError(f"retarget must be auto, on or off, not {self.retarget!r}")
        if self.retarget == "on" and self.mode == "replace":
            raise RequestError(
                "Retargeting is for animate mode: in replace mode the character takes the "
                "performer's place and size. Set retarget to auto or off."
            )
        if self.estimator not in ESTIMATORS:
            raise RequestError(f"estimator must be one of {ESTIMATORS}, not {self.estimator!r}")
        if self.person is not None and not (
            isinstance(self.person, list)
            and len(self.person) == 2
            and all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in self.person)
        ):
            raise RequestError(f"person must be [x, y] with both between 0 and 1, got {self.person!r}")
        if not 0.0 <= self.relight_strength <= 2.0:
            raise RequestError(f"relight_strength must be between 0 and 2, got {self.relight_strength}")
        if self.memory_mode not in MEMORY_MODES:
            raise RequestError(f"memory_mode must be one of {MEMORY_MODES}, not {self.memory_mode!r}")
        if self.attention not in ATTENTION_CHOICES:
            raise RequestError(f"attention must be one of {ATTENTION_CHOICES}, not {self.attention!r}")
        for name in ("compile", "fp8"):
            if not isinstance(getattr(self, name), bool):
                raise RequestError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not 0.0 <= self.step_cache <= 1.0:
            raise RequestError(f"step_cache must be between 0 (off) and 1, got {self.step_cache}")
        if not isinstance(self.loras, list) or not all(
            isinstance(x, dict)
            and isinstance(x.get("path"), str)
            and isinstance(x.get("strength", 1.0), (int, float))
            and set(x) <= {"path", "strength"}
            for x in self.loras
        ):
            raise RequestError('loras must be a list of {"path": "...safetensors", "strength": 1.0}')
        for x in self.loras:
            if not -4.0 <= x.get("strength", 1.0) <= 4.0:
                raise RequestError(f"LoRA strength must be between -4 and 4, got {x['strength']}")
        if not 0.01 <= self.clip_speed <= 100.0:
            raise RequestError(f"clip_speed must be between 0.01 and 100, got {self.clip_speed}")
        if self.clip_start < 0 or self.clip_frames < 0:
            raise RequestError("clip_start and clip_frames must not be negative")
        for name in ("width", "height"):
            v = getattr(self, name)
            if v < 16 or v % 16:
                raise RequestError(f"{name} must be a positive multiple of 16, got {v}")
        if not 1 <= self.steps <= 200:
            raise RequestError(f"steps must be between 1 and 200, got {self.steps}")
        if self.segment_frames < 5 or (self.segment_frames - 1) % 4:
            raise RequestError(f"frames per window must be 4n+1 (e.g. 77), got {self.segment_frames}")
        if self.overlap not in OVERLAPS:
            raise RequestError(f"overlap must be 1 or 5 frames, got {self.overlap}")
        if self.output_fps and not 1.0 <= self.output_fps <= 240.0:
            raise RequestError(
                f"output_fps must be between 1 and 240 (or 0 for the clip's rate), got {self.output_fps}"
            )
        if self.overlap == 5 and self.segment_frames < 10:
            raise RequestError("overlap 5 needs at least 13 frames per window")


@dataclass
class JobRequest:
    """Inputs are either local paths (backend on the same machine) or upload ids."""

    settings: JobSettings = field(default_factory=JobSettings)
    character_path: str | None = None
    clip_path: str | None = None
    character_upload: str | None = None
    clip_upload: str | None = None
    # Reuse saved keypoints (a keypoints.json, optionally with edited "pose_points") instead of detecting.
    keypoints_path: str | None = None
    keypoints_upload: str | None = None
    # Without a clip (motion from a Blender animation): a face image, or none for the neutral face.
    face_path: str | None = None
    face_upload: str | None = None
    output_dir: str | None = None
    name: str = "shot"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        data = dict(data)
        known = {f.name for f in fields(JobSettings)}
        raw = data.pop("settings", None) or {}
        unknown = set(raw) - known
        if unknown:
            raise RequestError(f"unknown settings: {sorted(unknown)}")
        allowed = {f.name for f in fields(cls)} - {"settings"}
        extra = set(data) - allowed
        if extra:
            raise RequestError(f"unknown request fields: {sorted(extra)}")
        req = cls(settings=JobSettings(**raw), **data)
        req.validate()
        return req

    def validate(self) -> None:
        self.settings.validate()
        if not (self.character_path or self.character_upload):
            raise RequestError("a character image is required (character_path or character_upload)")
        if not (self.clip_path or self.clip_upload or self.keypoints_path or self.keypoints_upload):
            raise RequestError(
                "a reference clip (or saved pose points) is required: clip_path or clip_upload"
            )


@dataclass
class JobStatus:
    id: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    stage: str = "queued"
    message: str = "Waiting in the queue"
    progress: float = 0.0
    window: int = 0
    windows: int = 0
    step: int = 0
    steps: int = 0
    eta_s: float | None = None
    error: str | None = None
    result_dir: str | None = None
    frame_count: int = 0
    fps: float = 0.0
    created: float = 0.0
    started: float | None = None
    finished_at: float | None = None
    updated: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES
