"""The protocol between the add-on and the backend: request and response shapes of the
HTTP API, the declared files a job writes (job.json, keypoints.json), and where things
live on disk by default.

Stdlib only: the Blender add-on imports this module too, so both sides of the wire
share one definition."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

API_PREFIX = "/v1"
TOKEN_ENV = "WAN_ANIMATE_TOKEN"

MODES = ("animate", "replace")
OVERLAPS = (1, 5)
TERMINAL_STATES = ("done", "failed", "cancelled")
# The stage of a job that was running when its backend stopped: failed, and resumable by
# submitting it again.
INTERRUPTED_STAGE = "interrupted"
# The exit code of a backend that found its data folder in use by another backend.
FOLDER_IN_USE_EXIT = 3
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
# Model families a job can run on; "wan-animate" is Wan2.2-Animate.
ENGINES = ("wan-animate", "wan-animate-2", "wan-animate-2-distilled")
ENGINE_LABELS = {
    "wan-animate": "Wan2.2-Animate",
    "wan-animate-2": "Wan-Animate-2",
    "wan-animate-2-distilled": "Wan-Animate-2 distilled",
}
# What each engine reads and offers, so the add-on shows only what applies and the backend
# refuses the rest before a model loads. fps: the rate it generates at; segment_frames: its
# window length; skeleton: driven by a drawn skeleton (editable guides, pose points, retargeting);
# guidance: it samples with classifier-free guidance (the distilled model does not);
# guidance_scale: the scale it is made for (1.0 turns classifier-free guidance off); ignores: the
# settings it has no use for (Wan-Animate-2 runs its own scheduler on flex attention in bf16,
# with no LoRA loader or step cache), refused unless left at their defaults.
ENGINE_FEATURES: dict[str, dict[str, Any]] = {
    "wan-animate": {
        "modes": MODES,
        "skeleton": True,
        "prompt": True,
        "guidance": True,
        "fps": 30.0,
        "segment_frames": 77,
        "steps": 20,
        "guidance_scale": 1.0,
        "ignores": (),
    },
    "wan-animate-2": {
        "modes": ("animate",),
        "skeleton": False,
        "prompt": True,
        "guidance": True,
        "fps": 24.0,
        "segment_frames": 81,
        "steps": 40,
        "guidance_scale": 3.0,
        "ignores": ("loras", "fp8", "step_cache", "attention", "sampler"),
    },
    "wan-animate-2-distilled": {
        "modes": ("animate",),
        "skeleton": False,
        "prompt": True,
        "guidance": False,
        "fps": 24.0,
        "segment_frames": 81,
        "steps": 4,
        "guidance_scale": 1.0,
        # It samples without guidance whatever the scale.
        "ignores": ("loras", "fp8", "step_cache", "attention", "sampler", "guidance_scale"),
    },
}
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


NO_NUL = r"^[^\x00]*$"  # text fields: a NUL would cut a path short in the C libraries below


def _when(setting: str, values: list, then: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {setting: {"enum": values}}, "required": [setting]},
        "then": {"properties": then},
    }


# Rules between two settings that JSON Schema can say (JobSettings.validate checks them too);
# a setting left out takes its default, which passes each of them.
_SETTING_PAIRS = [
    _when(
        "engine",
        [e for e in ENGINES if "replace" not in ENGINE_FEATURES[e]["modes"]],
        {"mode": {"const": "animate"}},
    ),
    *(
        _when("engine", [e], {n: {"const": v} for n, v in ignored_defaults(e).items()})
        for e in ENGINES
        if ENGINE_FEATURES[e]["ignores"]
    ),
    _when("retarget", ["on"], {"mode": {"not": {"const": "replace"}}}),
    _when("overlap", [5], {"segment_frames": {"minimum": 13}}),
    {
        "if": {"properties": {"cast": {"minItems": 1}}, "required": ["cast"]},
        "then": {"properties": {"mode": {"const": "replace"}}, "required": ["mode"]},
    },
]


def _cast_schema() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS}
    return {
        "type": "array",
        "maxItems": MAX_CAST,
        "items": {
            "type": "object",
            "properties": {
                "person": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0, "maximum": 1},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "person_frame": {"type": "integer", "minimum": 0, "maximum": MAX_CLIP_FRAMES},
                "character_path": {**text, "pattern": ABSOLUTE_PATH.pattern},
                "character_upload": {"type": "string", "pattern": UPLOAD_ID.pattern},
            },
            "required": ["person"],
            "oneOf": [{"required": ["character_path"]}, {"required": ["character_upload"]}],
            "additionalProperties": False,
        },
        # Two rows on the same person (different points) are found when the clip is read.
        "uniqueItems": True,
    }


def job_request_schema() -> dict[str, Any]:
    """The job request as JSON Schema, for /openapi.json: made from the same rules that check it."""
    defaults = JobSettings()
    props: dict[str, Any] = {}
    for name, (kind, extra) in _SETTING_RULES.items():
        if kind == "int":
            lo, hi, step, offset = (*extra, 1, 0)[:4]
            p: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
            if step > 1 and not offset:
                p["multipleOf"] = step
            elif step > 1:
                p["enum"] = list(range(lo + (offset - lo) % step, hi + 1, step))
        elif kind == "number":
            p = {"type": "number", "minimum": extra[0], "maximum": extra[1]}
            if len(extra) == 3:
                p = {"anyOf": [{"const": 0}, {**p, "minimum": extra[2]}]}
        elif kind == "bool":
            p = {"type": "boolean"}
        elif kind == "str":
            p = {"type": "string", "maxLength": extra, "pattern": NO_NUL}
        elif kind == "enum":
            # JSON Schema's enum holds 1.0 equal to 1; the check takes whole numbers only.
            p = {"type": "integer", "enum": list(extra)} if _is_int(extra[0]) else {"enum": list(extra)}
        elif kind == "person":
            p = {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                ]
            }
        elif kind == "cast":
            p = _cast_schema()
        else:
            p = {
                "type": "array",
                "maxItems": MAX_LORAS,
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_PATH_CHARS,
                            "pattern": NO_NUL,
                        },
                        "strength": {
                            "type": "number",
                            "minimum": LORA_STRENGTH[0],
                            "maximum": LORA_STRENGTH[1],
                        },
                    },
                    "required": ["path"],
                    "additionalProperties": False,
                },
            }
        p["default"] = getattr(defaults, name)
        props[name] = p
    absolute = ABSOLUTE_PATH.pattern
    path = {
        "anyOf": [
            {"type": "null"},
            {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS, "pattern": absolute},
        ]
    }
    upload = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": UPLOAD_ID.pattern}]}
    return {
        "type": "object",
        "title": "JobRequest",
        "additionalProperties": False,
        "properties": {
            "settings": {
                "type": "object",
                "additionalProperties": False,
                "properties": props,
                "allOf": _SETTING_PAIRS,
                "description": f"Besides each setting's own rule: width x height at most {MAX_PIXELS} pixels, "
                f"and one side at most {MAX_ASPECT:g} times the other.",
            },
            **{n: path for n in _PATH_FIELDS},
            **{n: upload for n in _UPLOAD_FIELDS},
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_NAME_CHARS,
                "pattern": NO_NUL,
                "default": "shot",
            },
        },
    }


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
    # Who submitted it (the tokens file's user name): only they and admins see the job.
    user: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


# Default locations, per platform: the add-on and the backend must agree on them.
def default_data_dir() -> Path:
    if env := os.environ.get("WAN_ANIMATE_DATA"):
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "wan-animate-backend"


def default_model_dir() -> Path:
    return default_data_dir() / "models" / "Wan2.2-Animate-14B-Diffusers"


def venv_python(venv: Path) -> Path:
    return Path(venv) / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


# The backend's environments, kept side by side by ``python -m backend setup --root ROOT``
# (backend/env/env_layout.py): ``ROOT/current.json`` names the one in use ("envs/<name>") and the
# one kept for a rollback. "." is a ROOT that is itself a venv (set up before this layout).
ENV_POINTER = "current.json"
LEGACY_ENV = "."


def env_pointer(root: Path) -> tuple[str | None, str | None]:
    """(the environment in use, the one a rollback returns to), as names under ``root``."""
    try:
        data = json.loads((Path(root) / ENV_POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    current = data.get("current")
    if current is None and venv_python(Path(root)).is_file():
        current = LEGACY_ENV
    return current, data.get("previous")


def env_folder(root: Path, name: str) -> Path:
    return Path(root) if name == LEGACY_ENV else Path(root) / name


def active_env_python(root: Path) -> Path:
    """The Python of the environment in use (the in-place venv's path when there is none yet)."""
    current = env_pointer(root)[0]
    return venv_python(env_folder(root, current) if current else Path(root))


# The files a job writes into its result folder, declared: the add-on, scripts and the
# backend itself (reusing keypoints) read them through read_job_json / read_keypoints_json.
JOB_SCHEMA = "wan-animate/job/1"
KEYPOINTS_SCHEMA = "wan-animate/keypoints/1"
KEYPOINTS_FORMAT = "coco-wholebody-133"
# What a Wan2.2-Animate model folder (diffusers layout) must hold: the backend's check before a
# job and the add-on's Check button read the same list.
MODEL_FOLDER_PARTS = (
    "model_index.json",
    "transformer",
    "vae",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "scheduler",
)
POSE_POINTS_FORMAT = "wan-pose-points"  # keypoints.json's shape with pose_points only (a Blender animation)

# keypoints.json's point layout (COCO-WholeBody) and the Wan-Animate skeleton drawn from it:
# names, index tables and colours, read the same by the backend (to draw) and the add-on (guides).
NUM_WHOLEBODY = 133
FACE_SLICE = slice(23, 91)
LEFT_HAND_SLICE = slice(91, 112)
RIGHT_HAND_SLICE = slice(112, 133)

# Each of the 20 drawn body points is the mean of two COCO-WholeBody rows.
BODY_SRC_A = (0, 6, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17, 20)
BODY_SRC_B = (0, 5, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 18, 21)
BODY_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LToe", "RToe",
)  # fmt: skip
# 1-based pairs into the 20 body points, in drawing order.
BODY_BONES = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12),
    (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (14, 19), (11, 20),
)  # fmt: skip
PALETTE = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
    (200, 200, 0), (100, 100, 0),
)  # fmt: skip
HAND_EDGES = tuple((0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4))
HAND_NAMES = ("Wrist",) + tuple(
    f"{finger}{j}" for finger in ("Thumb", "Index", "Middle", "Ring", "Pinky") for j in range(1, 5)
)

_NUM = {"type": "number"}
_CLIP = {
    "type": "object",
    "required": ["path", "sha256", "fps", "frame_count", "width", "height"],
    "properties": {
        "fps": _NUM,
        "frame_count": {"type": "integer"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "variable_rate": {"type": "boolean"},
        "video_start_offset_s": _NUM,
        "rotation_quarter_turns": {"type": "integer"},
    },
}
JOB_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "job_id",
        "name",
        "settings",
        "inputs",
        "fps",
        "frame_count",
        "frame_pattern",
        "output_to_model",
        "model_fps",
        "estimator",
        "tiny_random_model",
    ],
    "properties": {
        "schema": {"type": "string"},
        "job_id": {"type": "string"},
        "engine": {"type": "string"},
        "settings": {"type": "object", "required": ["width", "height", "mode"]},
        "inputs": {
            "type": "object",
            "required": ["character", "clip"],
            "properties": {"clip": {"anyOf": [{"type": "null"}, _CLIP]}},
        },
        "fps": _NUM,
        "frame_count": {"type": "integer"},
        "frame_pattern": {"type": "string"},
        "output_to_model": {"type": "array", "items": {"type": "integer"}},
        "model_fps": _NUM,
        "tiny_random_model": {"type": "boolean"},
    },
}
_POINT = {"type": "array", "items": _NUM}
KEYPOINTS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "frames"],
    "properties": {
        "schema": {"type": "string"},
        "format": {"enum": [KEYPOINTS_FORMAT, POSE_POINTS_FORMAT]},
        "fps": _NUM,  # pose-points files: the rate the animation was sampled at
        "pose_points_width": _NUM,
        "pose_points_height": _NUM,
        "pose_size": _POINT,  # (width, height) of the frames pose_drawn is in
        "pose_canvas": _POINT,  # (width, height) the pose frames were drawn on before the fit
        "pose_right_hand_first": {"type": "boolean"},  # hands drawn right then left (retargeted)
        "frames": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "model_frame": {"type": "integer"},
                    "clip_frame": {"type": "integer"},
                    "keypoints": {"type": "array", "items": _POINT},  # 133 x [x, y, confidence], clip pixels
                    "face_box": _POINT,
                    "face_box_bridged": {"type": "boolean"},
                    "face_box_from": {"enum": ["landmarks", "head_points", "bridged"]},
                    "person_box": {"anyOf": [{"type": "null"}, _POINT]},
                    "pose_points": {"type": "array", "items": _POINT},  # drawn as they are (edited guides)
                    "pose_drawn": {
                        "type": "array",
                        "items": _POINT,
                    },  # 62 x [x, y, c] as the pose frame drew them
                },
            },
        },
    },
}


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (the subset of JSON Schema these declarations use)."""
    if "anyOf" in schema:
        if any(not schema_errors(value, s, where) for s in schema["anyOf"]):
            return []
        return [f"{where}: matches none of the allowed shapes"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r:.60} is not one of {schema['enum']}"]
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kind and not checks[kind](value):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    errors: list[str] = []
    if kind == "object":
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errors += schema_errors(value[k], sub, f"{where}.{k}")
    elif kind == "array" and "items" in schema:
        for i, item in enumerate(value[:2000]):  # a long clip's frames are alike: check a prefix
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
            if len(errors) > 5:
                break
    return errors


def _read_declared(path: Path | str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / what
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(f"Cannot read {path}: {exc}") from exc
    errors = schema_errors(data, schema)
    if errors:
        raise RequestError(f"{path} is not a {what} this version reads: " + "; ".join(errors[:5]))
    return data


def read_job_json(path: Path | str) -> dict[str, Any]:
    """A result's job.json (``path``: the file or its result folder), checked against its schema."""
    return _read_declared(path, JOB_JSON_SCHEMA, "job.json")


def read_keypoints_json(path: Path | str) -> dict[str, Any]:
    """A keypoints.json (or a Blender animation's pose-points file), checked against its schema."""
    return _read_declared(path, KEYPOINTS_JSON_SCHEMA, "keypoints.json")
