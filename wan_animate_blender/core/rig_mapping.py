"""Which bone of an artist's rig stands for which Wan pose point (bpy-free).

A point is a bone's head or tail. Rigify (DEF- deform bones), Mixamo-style
(mixamorig:LeftArm) and plain Blender naming (upper_arm.L) are recognised; an
artist's own mapping ("LWrist=hand_L:head, Nose=jaw:tail") overrides any entry.
Points a rig has no bone for (eyes and ears on most body rigs) are left out and
so not drawn; the nose falls back to the head bone's middle."""

from __future__ import annotations

from dataclasses import dataclass

PLAIN = {
    "Neck": "neck:head", "Nose": "head:mid",
    "RShoulder": "upper_arm.R:head", "RElbow": "forearm.R:head", "RWrist": "hand.R:head",
    "LShoulder": "upper_arm.L:head", "LElbow": "forearm.L:head", "LWrist": "hand.L:head",
    "RHip": "thigh.R:head", "RKnee": "shin.R:head", "RAnkle": "foot.R:head", "RToe": "toe.R:tail",
    "LHip": "thigh.L:head", "LKnee": "shin.L:head", "LAnkle": "foot.L:head", "LToe": "toe.L:tail",
    "REye": "eye.R:head", "LEye": "eye.L:head", "REar": "ear.R:head", "LEar": "ear.L:head",
}  # fmt: skip
RIGIFY = {k: "DEF-" + v for k, v in PLAIN.items()}
RIGIFY.update({"Neck": "DEF-spine.004:head", "Nose": "DEF-spine.006:mid"})
_MIXAMO_SIDE = {"R": "Right", "L": "Left"}
MIXAMO = {"Neck": "mixamorig:Neck:head", "Nose": "mixamorig:Head:mid"}
for _s, _side in _MIXAMO_SIDE.items():
    MIXAMO.update(
        {
            f"{_s}Shoulder": f"mixamorig:{_side}Arm:head",
            f"{_s}Elbow": f"mixamorig:{_side}ForeArm:head",
            f"{_s}Wrist": f"mixamorig:{_side}Hand:head",
            f"{_s}Hip": f"mixamorig:{_side}UpLeg:head",
            f"{_s}Knee": f"mixamorig:{_side}Leg:head",
            f"{_s}Ankle": f"mixamorig:{_side}Foot:head",
            f"{_s}Toe": f"mixamorig:{_side}ToeBase:tail",
            f"{_s}Eye": f"mixamorig:{_side}Eye:head",
        }
    )
SCHEMES = {"rigify": RIGIFY, "mixamo": MIXAMO, "plain": PLAIN}


@dataclass(frozen=True)
class BoneRef:
    bone: str
    end: str  # head | tail | mid


def _ref(spec: str) -> BoneRef:
    bone, _, end = spec.rpartition(":")
    if end not in ("head", "tail", "mid"):
        bone, end = spec, "head"
    return BoneRef(bone, end)


def detect_scheme(bone_names: list[str]) -> str:
    names = set(bone_names)
    scores = {k: sum(_ref(v).bone in names for v in m.values()) for k, m in SCHEMES.items()}
    return max(scores, key=scores.get)


def parse_overrides(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (x.strip() for x in text.replace(";", ",").split(","))):
        point, sep, spec = item.partition("=")
        if not sep or not spec.strip():
            raise ValueError(f"mapping entry '{item}' should look like 'LWrist=hand_L:head'")
        out[point.strip()] = spec.strip()
    return out


def build_mapping(bone_names: list[str], overrides: str = "") -> tuple[str, dict[str, BoneRef]]:
    """(scheme name, point -> bone) for the points this rig has."""
    scheme = detect_scheme(bone_names)
    specs = {**SCHEMES[scheme], **parse_overrides(overrides)}
    names = set(bone_names)
    mapping = {p: _ref(s) for p, s in specs.items() if _ref(s).bone in names}
    return scheme, mapping
