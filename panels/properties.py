"""Per-scene generation settings, shown in the sidebar."""

from __future__ import annotations

import bpy


class WANANIM_Settings(bpy.types.PropertyGroup):
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
    # Read by the panel while a job runs (written on the main thread by the poll timer).
    progress: bpy.props.FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0)
    status: bpy.props.StringProperty(name="Status", default="")
