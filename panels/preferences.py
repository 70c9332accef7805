"""Add-on preferences: where the backend runs and where things are kept."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender.backend_setup import SETUP_STATE
from ..wan_animate_blender.blender.settings import ADDON_PACKAGE


class WANANIM_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_mode: bpy.props.EnumProperty(
        name="Backend",
        items=[
            ("LOCAL", "Local", "Start the backend on this computer"),
            ("REMOTE", "Remote", "Use a backend already running on another machine"),
        ],
        default="LOCAL",
    )
    remote_url: bpy.props.StringProperty(name="Remote URL", default="http://127.0.0.1:8765")
    remote_token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")
    backend_python: bpy.props.StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        description="Python of the backend's own environment (empty: the one 'Set up backend' makes)",
    )
    setup_python: bpy.props.StringProperty(
        name="Python for set-up",
        subtype="FILE_PATH",
        description="A Python 3.11 on this computer used to create the backend's environment (not Blender's)",
    )
    model_dir: bpy.props.StringProperty(
        name="Model folder",
        subtype="DIR_PATH",
        description="Wan2.2-Animate-14B-Diffusers weights (empty: default)",
    )
    output_dir: bpy.props.StringProperty(
        name="Output folder",
        subtype="DIR_PATH",
        description="Where job folders are made (empty: the extension's user folder)",
    )
    device: bpy.props.StringProperty(name="Device", default="auto", description="auto, cpu, cuda or cuda:N")
    memory_mode: bpy.props.EnumProperty(
        name="GPU Memory",
        items=[
            ("auto", "Automatic", "The fastest mode that fits the GPU's free memory"),
            ("resident", "Everything on the GPU", "Fastest; about 80 GB at 720p"),
            ("model_offload", "Model Offload", "One model on the GPU at a time; about 48 GB"),
            ("group_offload", "Block Offload", "Transformer blocks stream from CPU memory; 16-24 GB GPUs"),
            ("sequential_offload", "Layer Offload", "Layer by layer: the slowest, the least memory"),
        ],
        default="auto",
    )
    attention: bpy.props.EnumProperty(
        name="Attention",
        items=[
            ("auto", "Automatic", "The fastest kernel installed in the backend"),
            ("sdpa", "PyTorch SDPA", "PyTorch picks flash, cuDNN or memory-efficient attention"),
            ("sdpa_cudnn", "SDPA cuDNN", "PyTorch's cuDNN attention (NVIDIA)"),
            ("sdpa_flash", "SDPA Flash", "PyTorch's built-in FlashAttention-2 (NVIDIA)"),
            ("sdpa_math", "SDPA Math", "PyTorch's reference kernel: slow, for checking the others"),
            ("flash_attn", "FlashAttention-2", "Needs the flash_attn package"),
            ("flash_attn_3", "FlashAttention-3", "Hopper GPUs; needs flash_attn_interface"),
            ("sage", "SageAttention", "Needs the sageattention package"),
        ],
        default="auto",
    )
    compile: bpy.props.BoolProperty(
        name="Compile Transformer",
        description="torch.compile the transformer blocks: faster steps, the first window pays for compiling",
        default=False,
    )
    fp8: bpy.props.BoolProperty(
        name="FP8 Weights",
        description="Store the transformer in 8-bit floats: half its memory, output very close",
        default=False,
    )
    cpu_threads: bpy.props.IntProperty(
        name="CPU threads", default=0, min=0, max=256, description="torch threads in the backend (0: default)"
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "REMOTE":
            layout.prop(self, "remote_url")
            layout.prop(self, "remote_token")
        else:
            col = layout.column()
            col.prop(self, "backend_python")
            col.prop(self, "setup_python")
            row = col.row()
            row.operator("wan_animate.setup_backend", icon="CONSOLE")
            setup = SETUP_STATE
            if setup.get("running") or setup.get("lines"):
                box = col.box()
                box.label(text=setup.get("stage", ""))
                for line in setup.get("lines", [])[-6:]:
                    box.label(text=line[:120])
            col.prop(self, "model_dir")
            col.prop(self, "device")
            col.prop(self, "cpu_threads")
        col = layout.column(heading="Speed and Memory")
        col.prop(self, "memory_mode")
        col.prop(self, "attention")
        col.prop(self, "compile")
        col.prop(self, "fp8")
        layout.prop(self, "output_dir")
