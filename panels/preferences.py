"""Add-on preferences: what the machine needs, where the backend runs, the weights, and
where things are kept."""

from __future__ import annotations

import bpy

from ..wan_animate_blender.blender.backend_setup import CHECK_STATE, DOWNLOAD_STATE, SETUP_STATE
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
    device: bpy.props.StringProperty(
        name="Device", default="auto", description="auto, cpu, cuda, cuda:N or mps (Apple Silicon's GPU)"
    )
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
        draw_requirements(layout)
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
            row.operator("wan_animate.rollback_backend", icon="LOOP_BACK")
            setup = SETUP_STATE
            if setup.get("running") or setup.get("lines"):
                box = col.box()
                box.label(text=setup.get("stage", ""))
                for line in setup.get("lines", [])[-6:]:
                    box.label(text=line[:120])
            col.prop(self, "model_dir")
            draw_weights(col)
            col.prop(self, "device")
            col.prop(self, "cpu_threads")
        col = layout.column(heading="Speed and Memory")
        col.prop(self, "memory_mode")
        col.prop(self, "attention")
        col.prop(self, "compile")
        col.prop(self, "fp8")
        layout.prop(self, "output_dir")


# From backend/model/memory_plan.py's estimates for the released 14B model (77-frame windows,
# bf16, its 10 % headroom included); README.md's table has the same numbers.
REQUIREMENTS = (
    "NVIDIA GPU; 720p: 63 GB all on the GPU, 48 GB model offload, 16 GB block offload (13 with FP8)",
    "480p: 57 / 43 / 11 GB; layer offload runs in less, slowly. CPU only: impractical for the real model",
    "Disk: about 90 GB (weights 82 GB, preprocessing 3 GB, SAM2 0.9 GB) plus space for results",
    "Windows, Linux or macOS; NVIDIA driver 570 or newer (CUDA 12.8)",
    "Time, an estimate from the compute floor on an H100-class GPU: 720p at least 3 min per 77-frame window"
    " (2.5 s of video), 480p at least 45 s; slower GPUs and offloading take longer",
)


def draw_requirements(layout) -> None:
    box = layout.box()
    box.label(text="What this needs", icon="INFO")
    col = box.column(align=True)
    for line in REQUIREMENTS:
        col.label(text=line)


def draw_weights(col) -> None:
    row = col.row(align=True)
    if DOWNLOAD_STATE.get("running"):
        row.operator("wan_animate.cancel_download", icon="CANCEL")
    else:
        row.operator("wan_animate.download_weights", icon="IMPORT")
    row.operator("wan_animate.check_model", icon="CHECKMARK").hashes = False
    row.operator("wan_animate.check_model", text="Check sha256").hashes = True
    progress = DOWNLOAD_STATE.get("progress")
    if DOWNLOAD_STATE.get("stage"):
        box = col.box()
        if DOWNLOAD_STATE.get("running") and progress is not None and hasattr(box, "progress"):
            box.progress(factor=progress.fraction, text=progress.text())
        box.label(text=DOWNLOAD_STATE["stage"][:160])
        for line in DOWNLOAD_STATE.get("lines", [])[-3:]:
            box.label(text=line[:120])
    if CHECK_STATE.get("lines"):
        box = col.box()
        icon = "CHECKMARK" if CHECK_STATE.get("ok") else ("TIME" if CHECK_STATE.get("running") else "ERROR")
        for i, line in enumerate(CHECK_STATE["lines"]):
            box.label(text=line[:200], icon=icon if i == 0 else "BLANK1")
