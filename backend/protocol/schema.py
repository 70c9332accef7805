"""JSON Schema as this project uses it: the job request published in /openapi.json, made from the
same rule table that checks a request, and the small validator (schema_errors) that checks the
declared result files against their schemas."""

from __future__ import annotations

from typing import Any

from .engines import ENGINE_FEATURES, ENGINES
from .request import (
    _PATH_FIELDS,
    _SETTING_RULES,
    _UPLOAD_FIELDS,
    ABSOLUTE_PATH,
    LORA_STRENGTH,
    MAX_ASPECT,
    MAX_CAST,
    MAX_CLIP_FRAMES,
    MAX_LORAS,
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    MAX_PIXELS,
    UPLOAD_ID,
    JobSettings,
    _is_int,
    ignored_defaults,
)

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
                "person": _unit_point(),
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


def _setting_schema(kind: str, extra: Any) -> dict[str, Any]:
    """One setting's rule (a row of the rule table) as JSON Schema."""
    if kind == "int":
        lo, hi, step, offset = (*extra, 1, 0)[:4]
        p: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
        if step > 1 and not offset:
            p["multipleOf"] = step
        elif step > 1:
            p["enum"] = list(range(lo + (offset - lo) % step, hi + 1, step))
        return p
    if kind == "number":
        p = {"type": "number", "minimum": extra[0], "maximum": extra[1]}
        return {"anyOf": [{"const": 0}, {**p, "minimum": extra[2]}]} if len(extra) == 3 else p
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "str":
        return {"type": "string", "maxLength": extra, "pattern": NO_NUL}
    if kind == "enum":
        # JSON Schema's enum holds 1.0 equal to 1; the check takes whole numbers only.
        return {"type": "integer", "enum": list(extra)} if _is_int(extra[0]) else {"enum": list(extra)}
    if kind == "person":
        return {"anyOf": [{"type": "null"}, _unit_point()]}
    if kind == "cast":
        return _cast_schema()
    return _loras_schema()


def _unit_point() -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "minItems": 2,
        "maxItems": 2,
    }


def _loras_schema() -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": MAX_LORAS,
        "items": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS, "pattern": NO_NUL},
                "strength": {"type": "number", "minimum": LORA_STRENGTH[0], "maximum": LORA_STRENGTH[1]},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    }


def job_request_schema() -> dict[str, Any]:
    """The job request as JSON Schema, for /openapi.json: made from the same rules that check it."""
    defaults = JobSettings()
    props = {
        name: {**_setting_schema(kind, extra), "default": getattr(defaults, name)}
        for name, (kind, extra) in _SETTING_RULES.items()
    }
    path = {
        "anyOf": [
            {"type": "null"},
            {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS, "pattern": ABSOLUTE_PATH.pattern},
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
