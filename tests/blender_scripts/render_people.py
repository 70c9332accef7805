"""Renders a clip of whole-body mannequins in Blender (Workbench) and where each one's joints
project in every frame: real footage for the pose estimators, with a known answer.

Each person is built from spheres and capsules (head with eyes, nose and mouth, torso, limbs,
hands, feet) and does jumping jacks while sliding from ``start`` to ``end`` (metres on the
floor; the camera looks along +Y, so +X is image right and +Y is away from the camera).
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy
from bpy_extras.object_utils import world_to_camera_view
from harness import main
from mathutils import Vector

# COCO body index -> joint name (the figure faces the camera: its left is image right).
COCO = {0: "nose", 5: "ls", 6: "rs", 7: "le", 8: "re", 9: "lw", 10: "rw",
        11: "lh", 12: "rh", 13: "lk", 14: "rk", 15: "la", 16: "ra"}  # fmt: skip


def material(name: str, rgb) -> bpy.types.Material:
    m = bpy.data.materials.new(name)
    m.diffuse_color = (*rgb, 1.0)
    return m


def _mesh(kind: str, m, r: float = 1.0):
    if kind == "ball":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=r, segments=24, ring_count=12)
    else:
        bpy.ops.mesh.primitive_cylinder_add(radius=r, depth=2.0, vertices=16)
    o = bpy.context.active_object
    o.data.materials.append(m)
    o.rotation_mode = "QUATERNION"
    return o


def joints(t: float, phase: float, pos: Vector) -> dict[str, Vector]:
    """The figure's joints at time ``t`` (0..1 over the clip), standing at ``pos``."""
    arm = math.radians(25 + 110 * (0.5 - 0.5 * math.cos(2 * math.pi * (2 * t + phase))))
    leg = math.radians(3 + 12 * (0.5 - 0.5 * math.cos(2 * math.pi * (2 * t + phase))))
    j = {"head": Vector((0, 0, 1.66)), "neck": Vector((0, 0, 1.5)), "nose": Vector((0, -0.125, 1.645))}
    for side, s in (("l", 1), ("r", -1)):
        sh = Vector((0.2 * s, 0, 1.44))
        d = Vector((s * math.sin(arm), -0.05, -math.cos(arm))).normalized()
        j[side + "s"], j[side + "e"], j[side + "w"] = sh, sh + 0.28 * d, sh + 0.53 * d
        hip = Vector((0.1 * s, 0, 0.93))
        d = Vector((s * math.sin(leg), 0, -math.cos(leg)))
        j[side + "h"], j[side + "k"], j[side + "a"] = hip, hip + 0.43 * d, hip + 0.85 * d
    return {k: v + pos for k, v in j.items()}


class Figure:
    def __init__(self, shirt_rgb, face: bool = True) -> None:
        skin = material("skin", (0.8, 0.55, 0.42))
        hair = material("hair", (0.12, 0.08, 0.05))
        shirt = material("shirt", shirt_rgb)
        pants = material("pants", (0.2, 0.2, 0.22))
        dark = material("dark", (0.02, 0.02, 0.02))
        lip = material("lip", (0.5, 0.15, 0.15))
        # (object, how it follows the joints)
        # Without a face: a head seen from behind or under a hood (all hair, no features).
        self.parts = [
            (_mesh("ball", skin if face else hair, 0.115), ("at", "head", (0, 0, 0), (0.9, 1, 1.15)))
        ]
        if face:
            self.parts += [
                (_mesh("ball", dark, 0.016), ("at", "head", (0.04, -0.1, 0.03), (1, 1, 1))),
                (_mesh("ball", dark, 0.016), ("at", "head", (-0.04, -0.1, 0.03), (1, 1, 1))),
                (_mesh("ball", skin, 0.02), ("at", "nose", (0, 0.01, 0), (1, 1.4, 1.3))),
                (_mesh("ball", lip, 0.012), ("at", "head", (0, -0.1, -0.06), (2.5, 0.6, 0.6))),
            ]
        self.parts += [
            (_mesh("cyl", skin, 0.05), ("between", "neck", "head")),
            (_mesh("ball", shirt), ("at", "neck", (0, 0, -0.27), (0.2, 0.12, 0.3))),
            (_mesh("ball", pants), ("at", "neck", (0, 0, -0.55), (0.18, 0.11, 0.12))),
        ]
        for a, b, r, m in (
            ("ls", "le", 0.05, shirt), ("rs", "re", 0.05, shirt), ("le", "lw", 0.04, skin),
            ("re", "rw", 0.04, skin), ("lh", "lk", 0.075, pants), ("rh", "rk", 0.075, pants),
            ("lk", "la", 0.055, pants), ("rk", "ra", 0.055, pants),
        ):  # fmt: skip
            self.parts.append((_mesh("cyl", m, r), ("between", a, b)))
        for j, r, m in (("ls", 0.06, shirt), ("rs", 0.06, shirt), ("le", 0.05, shirt), ("re", 0.05, shirt),
                        ("lk", 0.07, pants), ("rk", 0.07, pants)):  # fmt: skip
            self.parts.append((_mesh("ball", m, r), ("at", j, (0, 0, 0), (1, 1, 1))))
        for j in ("lw", "rw"):
            self.parts.append((_mesh("ball", skin, 0.05), ("hand", j)))
        for j in ("la", "ra"):
            self.parts.append((_mesh("ball", dark, 0.06), ("at", j, (0, -0.07, -0.03), (0.8, 1.8, 0.6))))

    def pose(self, j: dict[str, Vector]) -> None:
        for obj, how in self.parts:
            if how[0] == "at":
                obj.location = j[how[1]] + Vector(how[2])
                obj.rotation_quaternion = (1, 0, 0, 0)
                obj.scale = how[3]
            elif how[0] == "between":
                p, q = j[how[1]], j[how[2]]
                d = q - p
                obj.location = (p + q) / 2
                obj.rotation_quaternion = Vector((0, 0, 1)).rotation_difference(d.normalized())
                obj.scale = (1, 1, d.length / 2)
            else:  # a hand beyond the wrist, along the forearm
                w, e = j[how[1]], j[how[1][0] + "e"]
                d = (w - e).normalized()
                obj.location = w + 0.06 * d
                obj.rotation_quaternion = Vector((0, 0, 1)).rotation_difference(d)
                obj.scale = (0.7, 0.5, 1.3)


def render(a: dict) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    w, h, frames = a["width"], a["height"], a["frames"]
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light, shading.color_type, shading.show_shadows = "STUDIO", "MATERIAL", True
    scene.render.resolution_x, scene.render.resolution_y = w, h
    scene.render.resolution_percentage = 100
    bpy.ops.mesh.primitive_plane_add(size=30)
    floor = bpy.context.active_object
    floor.data.materials.append(material("floor", (0.6, 0.6, 0.58)))
    bpy.ops.object.camera_add(
        location=(0, -a.get("distance", 4.6), a.get("camera_height", 1.0)), rotation=(math.radians(88), 0, 0)
    )
    cam = scene.camera = bpy.context.active_object
    cam.data.lens = 40
    people = [(Figure(p["shirt"], p.get("face", True)), p) for p in a["people"]]
    out = Path(a["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    for f in range(frames):
        t = f / max(1, frames - 1)
        frame_truth = []
        for fig, p in people:
            s, e = Vector((*p["start"], 0)), Vector((*p["end"], 0))
            j = joints(t, p.get("phase", 0.0), s.lerp(e, t))
            fig.pose(j)
            pts = {}
            for idx, name in COCO.items():
                v = world_to_camera_view(scene, cam, j[name])
                pts[idx] = [v.x * w, (1 - v.y) * h]
            frame_truth.append(pts)
        truth.append(frame_truth)
        scene.render.filepath = str(out / f"frame_{f:04d}.png")
        bpy.ops.render.render(write_still=True)
        if a.get("silhouettes"):
            _silhouettes(scene, out, f, [fig for fig, _ in people], floor)
    return {"truth": truth, "frames": sorted(p.name for p in out.glob("frame_*.png"))}


def _silhouettes(scene, out: Path, f: int, figures: list, floor) -> None:
    """Each person rendered alone on a transparent film: their silhouette is the alpha
    (silhouette_<person>_<frame>.png), the answer key for masks. The frame itself is
    rendered before, with the scene as it was."""
    settings = scene.render.image_settings
    kept = settings.color_mode
    scene.render.film_transparent, settings.color_mode = True, "RGBA"
    floor.hide_render = True
    for n, fig in enumerate(figures):
        for other in figures:
            for obj, _how in other.parts:
                obj.hide_render = other is not fig
        scene.render.filepath = str(out / f"silhouette_{n}_{f:04d}.png")
        bpy.ops.render.render(write_still=True)
    for fig in figures:
        for obj, _how in fig.parts:
            obj.hide_render = False
    floor.hide_render = False
    scene.render.film_transparent, settings.color_mode = False, kept


if __name__ == "__main__":
    main(render)
