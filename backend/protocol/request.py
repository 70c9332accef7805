"""The job request: its settings with each one's rule and bounds (JobSettings, the rule table
check_setting applies), the request that carries them with its inputs (JobRequest), and the
error a refused request raises (RequestError)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .engines import ENGINE_FEATURES, ENGINE_LABELS, ENGINES, MODES

API_PREFIX = "/v1"
TOKEN_ENV = "WAN_ANIMATE_TOKEN"

OVERLAPS = (1, 5)
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
# Samplers, both as the official Wan2.2 code runs them: "dpm++" its generate's default, "unipc"
# its other solver.
SAMPLERS = ("dpm++", "unipc")
# Pose estimators: "auto" is ViTPose when its models are in <model>/process_checkpoint, else mediapipe.
ESTIMATORS = ("auto", "vitpose", "mediapipe")


class RequestError(ValueError):
    """A request the backend refuses; the message says what to change."""


# Bounds that keep one request from exhausting memory or crashing a native library. The model
# is trained around 1280x720; past about two megapixels a window no longer fits on any one GPU,
# and a frame far narrower than it is tall (or the reverse) crashed mediapipe's image code.
MAX_SIDE = 2048
MAX_PIXELS = 2048 * 1152
MAX_ASPECT = 4.0
MAX_SEGMENT_FRAMES = 161  # two official windows; longer ones exceed any GPU's memory at 720p
# The text encoder keeps 512 tokens; the tokenizer reads the whole text first, so a huge prompt
# costs memory before it is cut (a 1 MB prompt took 0.55 GB).
MAX_PROMPT_CHARS = 2000
MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 100
MAX_LORAS = 16
MAX_CAST = 8  # performers replaced in one job, one pass each
MAX_CLIP_FRAMES = 10_000_000
# What an input (clip frame, character or face image) may decode to, read from its header before
# any pixel is decoded: a 406-byte PNG of 10000x10 grew the backend to 6.4 GB. No job uses more
# than MAX_SIDE of a side; 8K footage (7680x4320) still passes.
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 8192 * 4608
MAX_INPUT_ASPECT = 8.0
# A job request is a flat object of a few settings; deeper JSON is an attack on the parser.
MAX_JSON_DEPTH = 8
MAX_REQUEST_BYTES = 1 << 20
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}(\.[a-z0-9]{1,10})?$")

LORA_STRENGTH = (-4.0, 4.0)
# (kind, extra) per setting: the one source of each setting's own rule, which check_setting
# applies and job_request_schema publishes in /openapi.json (only rules between settings live in
# JobSettings.validate alone). Kinds: int (lo, hi[, step, offset]: lo..hi and offset modulo step),
# number (lo, hi[, least]: lo..hi, and 0 or at least ``least``), bool, str, enum, person, loras,
# cast.
_SETTING_RULES: dict[str, tuple[str, Any]] = {
    "mode": ("enum", MODES),
    "engine": ("enum", ENGINES),
    "width": ("int", (16, MAX_SIDE, 16, 0)),
    "height": ("int", (16, MAX_SIDE, 16, 0)),
    "steps": ("int", (1, 200)),
    "seed": ("int", (-(2**63), 2**64 - 1)),
    "segment_frames": ("int", (5, MAX_SEGMENT_FRAMES, 4, 1)),
    "overlap": ("enum", OVERLAPS),
    "guidance_scale": ("number", (0.0, 30.0)),
    "prompt": ("str", MAX_PROMPT_CHARS),
    "output_fps": ("number", (0.0, 240.0, 1.0)),
    "clip_start": ("int", (0, MAX_CLIP_FRAMES)),
    "clip_frames": ("int", (0, MAX_CLIP_FRAMES)),
    "clip_speed": ("number", (0.01, 100.0)),
    "apply_rotation": ("bool", None),
    "colour_match": ("bool", None),
    "estimator": ("enum", ESTIMATORS),
    "retarget": ("enum", ("auto", "on", "off")),
    "person": ("person", None),
    "person_frame": ("int", (0, MAX_CLIP_FRAMES)),
    "relight_strength": ("number", (0.0, 2.0)),
    "relight_lora": ("str", MAX_PATH_CHARS),
    "memory_mode": ("enum", MEMORY_MODES),
    "attention": ("enum", ATTENTION_CHOICES),
    "compile": ("bool", None),
    "fp8": ("bool", None),
    "step_cache": ("number", (0.0, 1.0)),
    "sampler": ("enum", SAMPLERS),
    "loras": ("loras", None),
    "cast": ("cast", None),
}
_PATH_FIELDS = ("character_path", "clip_path", "keypoints_path", "face_path", "output_dir")
_UPLOAD_FIELDS = ("character_upload", "clip_upload", "keypoints_upload", "face_upload")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    # A whole number is compared with the bounds exactly: math.isfinite on a 400-digit one
    # raises OverflowError (it goes through float).
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def _whole_number_setting(name: str) -> bool:
    kind, extra = _SETTING_RULES[name]
    return kind == "int" or (kind == "enum" and _is_int(extra[0]))


def check_setting(name: str, v: Any) -> None:
    """Raise RequestError naming ``name`` when ``v`` has the wrong type or is out of range."""
    kind, extra = _SETTING_RULES[name]
    if kind == "int":
        lo, hi, step, offset = (*extra, 1, 0)[:4]
        if not _is_int(v) or not lo <= v <= hi:
            raise RequestError(f"settings.{name} must be a whole number from {lo} to {hi}, got {v!r:.80}")
        if (v - offset) % step:
            form = f"a positive multiple of {step}" if not offset else f"{step}n+{offset} (e.g. 77)"
            raise RequestError(f"settings.{name} must be {form}, got {v}")
    elif kind == "number":
        lo, hi, least = (*extra, None)[:3]
        if not _is_number(v) or not lo <= v <= hi:
            raise RequestError(f"settings.{name} must be a number from {lo} to {hi}, got {v!r:.80}")
        if least is not None and v and v < least:
            raise RequestError(
                f"settings.{name} must be between {least:g} and {hi:g} (or 0 for the clip's rate), got {v}"
            )
    elif kind == "bool":
        if not isinstance(v, bool):
            raise RequestError(f"settings.{name} must be true or false, got {v!r:.80}")
    elif kind == "str":
        if not isinstance(v, str) or len(v) > extra or "\x00" in v:
            raise RequestError(f"settings.{name} must be text of at most {extra} characters")
    elif kind == "enum":
        if not isinstance(v, type(extra[0])) or isinstance(v, bool) or v not in extra:
            raise RequestError(f"settings.{name} must be one of {list(extra)}, not {v!r:.80}")
    elif kind == "person":
        if v is not None and not (
            isinstance(v, list) and len(v) == 2 and all(_is_number(c) and 0.0 <= c <= 1.0 for c in v)
        ):
            raise RequestError(f"settings.person must be [x, y] with both between 0 and 1, got {v!r:.80}")
    elif kind == "loras":
        ok = isinstance(v, list) and len(v) <= MAX_LORAS
        for x in v if ok else ():
            ok = ok and (
                isinstance(x, dict)
                and set(x) <= {"path", "strength"}
                and isinstance(x.get("path"), str)
                and 0 < len(x["path"]) <= MAX_PATH_CHARS
                and "\x00" not in x["path"]
                and _is_number(x.get("strength", 1.0))
                and LORA_STRENGTH[0] <= x.get("strength", 1.0) <= LORA_STRENGTH[1]
            )
        if not ok:
            raise RequestError(
                f'settings.loras must be a list of at most {MAX_LORAS} {{"path": "...safetensors", "strength": 1.0}}'
                f" (LoRA strength from {LORA_STRENGTH[0]:g} to {LORA_STRENGTH[1]:g})"
            )
    elif kind == "cast":
        _check_cast(v)


_CAST_FIELDS = {"person", "person_frame", "character_path", "character_upload"}


def _check_cast(v: Any) -> None:
    form = (
        f'settings.cast must be a list of at most {MAX_CAST} {{"person": [x, y], "person_frame": 0, '
        '"character_path": "..." or "character_upload": "..."}'
    )
    if not isinstance(v, list) or len(v) > MAX_CAST:
        raise RequestError(form)
    for n, m in enumerate(v, 1):
        if not isinstance(m, dict) or not set(m) <= _CAST_FIELDS or m.get("person") is None:
            raise RequestError(f"{form}; row {n} is not")
        try:
            check_setting("person", m["person"])
            check_setting("person_frame", m.get("person_frame", 0))
            check_path("character_path", m.get("character_path"))
        except RequestError as exc:
            raise RequestError(f"settings.cast row {n}: {exc}") from None
        upload = m.get("character_upload")
        if upload is not None and not (isinstance(upload, str) and UPLOAD_ID.match(upload)):
            raise RequestError(
                f"settings.cast row {n}: character_upload must be an id returned by POST /v1/uploads"
            )
        if (m.get("character_path") is None) == (upload is None):
            raise RequestError(
                f"settings.cast row {n} needs its character: character_path or character_upload"
            )


def input_size_problem(width: int, height: int, what: str) -> str | None:
    """Why an input that decodes to ``width`` x ``height`` is refused before decoding, or None."""
    if width <= 0 or height <= 0:
        return f"The {what} declares an empty size ({width}x{height}); it is damaged. Save it again."
    if max(width, height) > MAX_INPUT_SIDE or width * height > MAX_INPUT_PIXELS:
        return (
            f"The {what} is {width}x{height}: larger than the backend reads (at most {MAX_INPUT_SIDE} "
            f"pixels a side and {MAX_INPUT_PIXELS // 1_000_000} megapixels). Scale it down; no job "
            f"uses more than {MAX_SIDE} pixels a side."
        )
    if max(width, height) > MAX_INPUT_ASPECT * min(width, height):
        return (
            f"The {what} is {width}x{height}: one side is more than {MAX_INPUT_ASPECT:g} times the "
            "other. Crop it to the part the shot uses."
        )
    return None


def json_depth_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON body nests too deeply, or None; walked without recursion."""
    todo = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return f"the body nests JSON deeper than {limit} levels; a job request is a flat object"
            todo.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return None


# POSIX, a drive letter, or UNC (\\server\share), and no NUL: the check and the published schema.
ABSOLUTE_PATH = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\[^\\/\x00]+[\\/][^\\/\x00]+)[^\x00]*$")


def check_path(name: str, v: Any) -> None:
    """A path field: text, no NUL, absolute (the backend's working folder means nothing to a client)."""
    if v is None:
        return
    if not isinstance(v, str) or not v or len(v) > MAX_PATH_CHARS or "\x00" in v:
        raise RequestError(f"{name} must be a file path (text, at most {MAX_PATH_CHARS} characters)")
    if not ABSOLUTE_PATH.match(v):
        raise RequestError(f"{name} must be an absolute path, got {v!r:.200}")


@dataclass
class JobSettings:
    mode: str = "animate"
    engine: str = "wan-animate"  # ENGINES
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
    # A movie's rotation flag applied (upright portrait footage); False where the strip's Blender
    # shows movies as stored (4.2), so the result lines up with the strip.
    apply_rotation: bool = True
    colour_match: bool = True  # match each window's colours to the previous one over the overlap
    estimator: str = "auto"
    # Animate mode: scale the performer's bones to the character's proportions ("auto": when
    # the character image shows enough of a body; "off": the performer's skeleton as is).
    retarget: str = "auto"
    # The performer to follow when several people are in the clip: a point [x, y] (0..1 of the
    # frame) on them, on frame ``person_frame`` of the clip as the job reads it (counted from
    # clip_start); None: the largest person. A point on nobody is refused before the long pass.
    person: list | None = None
    person_frame: int = 0
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
    sampler: str = "dpm++"  # SAMPLERS (Wan2.2-Animate)
    # [{"path": ".../lora.safetensors", "strength": 1.0}], paths on the backend's machine.
    loras: list = field(default_factory=list)
    # Replace mode, several performers: [{"person": [x, y], "person_frame": n, "character_path"
    # or "character_upload"}], one replace pass per row in this order, each on the plate the row
    # before made; empty: one performer (``person``) as ever.
    cast: list = field(default_factory=list)

    def validate(self) -> None:
        # Types and ranges first, so every later check compares values of the right kind.
        for name in _SETTING_RULES:
            check_setting(name, getattr(self, name))
        engine = ENGINE_FEATURES[self.engine]
        if self.cast and ("replace" not in engine["modes"] or self.mode != "replace"):
            raise RequestError(
                "A cast replaces each performer in turn, which is replace mode"
                + (
                    f", and {ENGINE_LABELS[self.engine]} has none: choose Wan2.2-Animate as the engine."
                    if "replace" not in engine["modes"]
                    else ": set the mode to replace."
                )
            )
        rows = [json.dumps(m, sort_keys=True) for m in self.cast]
        if len(set(rows)) < len(rows):
            raise RequestError("Two cast rows are the same: give each performer one row.")
        if self.mode not in engine["modes"]:
            raise RequestError(
                f"{ENGINE_LABELS[self.engine]} has no {self.mode} mode. Choose Wan2.2-Animate as the engine "
                f"for {self.mode} mode, or switch the mode to {engine['modes'][0]}."
            )
        ignored = [n for n, v in ignored_defaults(self.engine).items() if getattr(self, n) != v]
        if ignored:
            raise RequestError(
                f"{ENGINE_LABELS[self.engine]} does not use {', '.join(ignored)}: leave "
                + ", ".join(f"{n} at {json.dumps(ignored_defaults(self.engine)[n])}" for n in ignored)
                + " or choose Wan2.2-Animate as the engine."
            )
        if self.retarget == "on" and self.mode == "replace":
            raise RequestError(
                "Retargeting is for animate mode: in replace mode the character takes the "
                "performer's place and size. Set retarget to auto or off."
            )
        if self.width * self.height > MAX_PIXELS:
            raise RequestError(
                f"{self.width}x{self.height} is larger than the backend makes (at most {MAX_PIXELS} pixels, "
                "e.g. 1920x1088); the model is trained around 1280x720."
            )
        if max(self.width, self.height) > MAX_ASPECT * min(self.width, self.height):
            raise RequestError(
                f"{self.width}x{self.height} is too narrow: one side may be at most {MAX_ASPECT:g} times the other."
            )
        if self.overlap == 5 and self.segment_frames < 10:
            raise RequestError("overlap 5 needs at least 13 frames per window")


def ignored_defaults(engine: str) -> dict[str, Any]:
    """The settings ``engine`` has no use for, each with the default a request must leave it at."""
    defaults = asdict(JobSettings())
    return {name: defaults[name] for name in ENGINE_FEATURES[engine]["ignores"]}


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
    def from_json(cls, data: Any) -> JobRequest:
        if not isinstance(data, dict):
            raise RequestError("the job request must be a JSON object")
        data = dict(data)
        known = {f.name for f in fields(JobSettings)}
        raw = data.pop("settings", None)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise RequestError("settings must be a JSON object of setting names and values")
        unknown = set(raw) - known
        if unknown:
            raise RequestError(f"unknown settings: {sorted(unknown)[:20]}")
        allowed = {f.name for f in fields(cls)} - {"settings"}
        extra = set(data) - allowed
        if extra:
            raise RequestError(f"unknown request fields: {sorted(extra)[:20]}")
        raw = dict(raw)
        for k, v in raw.items():
            # JSON Schema counts 5.0 as an integer; so does the backend, for whole-number settings.
            if isinstance(v, float) and v.is_integer() and _whole_number_setting(k):
                raw[k] = int(v)
        if isinstance(raw.get("cast"), list):
            raw["cast"] = [_whole_frame(m) for m in raw["cast"]]
        settings = JobSettings(**raw)
        settings.validate()
        for name in _PATH_FIELDS:
            check_path(name, data.get(name))
        for name in _UPLOAD_FIELDS:
            v = data.get(name)
            if v is not None and not (isinstance(v, str) and UPLOAD_ID.match(v)):
                raise RequestError(f"{name} must be an id returned by POST /v1/uploads, got {v!r:.80}")
        name = data.get("name", "shot")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or "\x00" in name:
            raise RequestError(f"name must be text of 1 to {MAX_NAME_CHARS} characters")
        req = cls(settings=settings, **data)
        req.validate()
        return req

    def validate(self) -> None:
        self.settings.validate()
        if not (self.character_path or self.character_upload or self.settings.cast):
            raise RequestError("a character image is required (character_path or character_upload)")
        if not (self.clip_path or self.clip_upload or self.keypoints_path or self.keypoints_upload):
            raise RequestError(
                "a reference clip (or saved pose points) is required: clip_path or clip_upload"
            )
        if not ENGINE_FEATURES[self.settings.engine]["skeleton"] and not (self.clip_path or self.clip_upload):
            raise RequestError(
                f"{ENGINE_LABELS[self.settings.engine]} is driven by a video, not by pose points: give a "
                "reference clip (for a Blender animation, render it as a playblast), or choose Wan2.2-Animate."
            )


def _whole_frame(member: Any) -> Any:
    f = member.get("person_frame") if isinstance(member, dict) else None
    if isinstance(f, float) and f.is_integer():
        return {**member, "person_frame": int(f)}
    return member
