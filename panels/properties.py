"""Per-scene generation settings, shown in the sidebar."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.core import engine_choice


class WANANIM_Lora(bpy.types.PropertyGroup):
    """One LoRA file applied to the transformer (a step-distillation, relighting or style LoRA)."""

    path: bpy.props.StringProperty(name="LoRA", subtype="FILE_PATH", description="A .safetensors LoRA file")
    strength: bpy.props.FloatProperty(
        name="Strength", default=1.0, min=-4.0, max=4.0, soft_min=0.0, soft_max=1.5
    )
    enabled: bpy.props.BoolProperty(name="Use", default=True)


class WANANIM_CastMember(bpy.types.PropertyGroup):
    """One performer of a cast and the character that replaces them (Replace Performer)."""

    picked: bpy.props.BoolProperty(name="Picked", default=False)
    point: bpy.props.FloatVectorProperty(
        name="Performer",
        description="Where this performer is on the picked frame (0-1 from the left, 0-1 from the top)",
        size=2,
        min=0.0,
        max=1.0,
        default=(0.5, 0.5),
    )
    frame: bpy.props.IntProperty(
        name="Pick Frame", description="The clip's frame this performer was picked on (0 = its first)", min=0
    )
    character_source: bpy.props.EnumProperty(
        name="Character",
        items=[
            ("FILE", "Image File", "A character image on disk"),
            ("RENDER", "Render Camera", "A still rendered from this row's camera (or the scene's)"),
        ],
        default="FILE",
    )
    character_image: bpy.props.StringProperty(name="Character Image", subtype="FILE_PATH")
    camera: bpy.props.PointerProperty(
        name="Camera",
        type=bpy.types.Object,
        poll=lambda _self, obj: obj.type == "CAMERA",
        description="The camera the character still is rendered from (empty: the scene's)",
    )


def _engine_changed(self, _context) -> None:
    # Steps, frames per window and guidance the artist left at the previous engine's defaults
    # follow the new engine, so the panel shows what the job will use.
    previous = self.engine_defaults_of or engine_choice.DEFAULT_ENGINE
    if previous == self.engine:
        return
    values = {n: getattr(self, n) for n in engine_choice.ENGINE_DEFAULT_NAMES}
    for name, value in engine_choice.switched_defaults(previous, self.engine, values).items():
        if value != values[name]:
            setattr(self, name, value)
    self.engine_defaults_of = self.engine


class WANANIM_Settings(bpy.types.PropertyGroup):
    engine: bpy.props.EnumProperty(
        name="Engine",
        description="The model that generates the shot",
        items=engine_choice.enum_items(),
        default=engine_choice.DEFAULT_ENGINE,
        update=_engine_changed,
    )
    # The engine whose defaults the engine-dependent settings were last given.
    engine_defaults_of: bpy.props.StringProperty(options={"HIDDEN"})
    prompt: bpy.props.StringProperty(
        name="Prompt",
        description="What the shot shows, e.g. the viewpoint or the setting (empty: the engine's own)",
    )
    guidance_scale: bpy.props.FloatProperty(
        name="Guidance",
        description="How strongly the prompt is followed (1: guidance off, faster)",
        default=engine_choice.engine_defaults(engine_choice.DEFAULT_ENGINE)["guidance_scale"],
        min=0.0,
        max=30.0,
        soft_max=10.0,
    )
    character_source: bpy.props.EnumProperty(
        name="Character",
        items=[
            ("RENDER", "Render Camera", "Render a still of the scene from the active camera"),
            ("FILE", "Image File", "Use an image file"),
        ],
        default="RENDER",
    )
    character_image: bpy.props.StringProperty(name="Image", subtype="FILE_PATH")
    clip_source: bpy.props.EnumProperty(
        name="Reference",
        items=[
            ("FILE", "Movie File", "A movie file on disk"),
            ("STRIP", "Active Strip", "The active movie strip in the Sequencer"),
        ],
        default="FILE",
    )
    clip_path: bpy.props.StringProperty(name="Clip", subtype="FILE_PATH")
    quality: bpy.props.EnumProperty(
        name="Resolution",
        items=[
            ("preview", "Preview", "About 256x144 pixels: a quick check of motion and framing"),
            ("480p", "480p", "About 832x480 pixels"),
            ("720p", "720p", "About 1280x720 pixels"),
        ],
        default="480p",
    )
    steps: bpy.props.IntProperty(name="Steps", default=20, min=1, max=200)
    seed: bpy.props.IntProperty(name="Seed", default=42, min=0)
    segment_frames: bpy.props.IntProperty(
        name="Frames per Window",
        default=77,
        min=5,
        max=161,
        step=4,
        description="4n+1 frames generated per window",
    )
    overlap: bpy.props.EnumProperty(
        name="Overlap", items=[("1", "1 frame", ""), ("5", "5 frames", "")], default="1"
    )
    colour_match: bpy.props.BoolProperty(
        name="Match Colours Across Windows",
        description=(
            "Correct each window's colour and contrast to the previous one over their shared "
            "frames, so long shots do not drift"
        ),
        default=True,
    )
    retarget: bpy.props.BoolProperty(
        name="Retarget to Character",
        description=(
            "Animate mode: give the performer's skeleton the character's proportions, measured on "
            "the character image (used when the image shows the character's body)"
        ),
        default=True,
    )
    sampler: bpy.props.EnumProperty(
        name="Sampler",
        items=[
            ("dpm++", "DPM++", "DPM-Solver++ at shift 5, the official Wan2.2-Animate generate's default"),
            ("unipc", "UniPC", "UniPC at shift 5, the official generate's other solver"),
        ],
        default="dpm++",
    )
    estimator: bpy.props.EnumProperty(
        name="Pose Estimator",
        items=[
            ("auto", "Automatic", "ViTPose when its models were downloaded, else mediapipe"),
            (
                "vitpose",
                "ViTPose-H (official)",
                "YOLOv10m + ViTPose-H whole-body, as Wan-Animate was trained",
            ),
            ("mediapipe", "Mediapipe", "Built in, offline, CPU"),
        ],
        default="auto",
    )
    pick_performer: bpy.props.BoolProperty(
        name="Pick Performer",
        description="Several people in the clip: follow the one at the point below instead of the largest",
        default=False,
    )
    performer_point: bpy.props.FloatVectorProperty(
        name="Performer",
        description="Where the performer is on the picked frame (0-1 from the left, 0-1 from the top)",
        size=2,
        min=0.0,
        max=1.0,
        default=(0.5, 0.5),
    )
    performer_frame: bpy.props.IntProperty(
        name="Pick Frame",
        description="The clip's frame the performer was picked on (0 = the movie's first frame)",
        min=0,
        default=0,
    )
    step_cache: bpy.props.FloatProperty(
        name="Step Cache",
        description=(
            "Reuse a denoising step's result when the model's output is predicted to change less "
            "than this (0: off; 0.05 to 0.15 trades a little detail for speed)"
        ),
        default=0.0,
        min=0.0,
        max=1.0,
    )
    loras: bpy.props.CollectionProperty(type=WANANIM_Lora)
    # Replace Performer with several performers: one row each, replaced in this order in one job.
    cast: bpy.props.CollectionProperty(type=WANANIM_CastMember)
    relight_strength: bpy.props.FloatProperty(
        name="Relighting",
        description="Replace mode: strength of the relighting LoRA that matches the character to the plate's light (0: off)",
        default=1.0,
        min=0.0,
        max=2.0,
    )
    relight_lora: bpy.props.StringProperty(
        name="Relighting LoRA",
        subtype="FILE_PATH",
        description="Empty: relighting_lora.ckpt in the model folder (fetched by the backend's download)",
    )
    # Read by the panel while a job runs (written on the main thread by the poll timer).
    progress: bpy.props.FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0)
    status: bpy.props.StringProperty(name="Status", default="")
