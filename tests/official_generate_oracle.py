"""The official Wan2.2 ``WanAnimate.generate`` (package ``wan22``) as the reference for the
backend's window loop, at a size a CPU runs in seconds.

What is real on the official side: its window loop, padding, conditioning frames, replace-mode
background and mask, guidance, samplers, relighting LoRA loading, and its own WanAnimateModel
(with random weights), which this module maps into diffusers' WanAnimateTransformer3DModel.
What is shared, fed to both sides: the text and CLIP features and the VAE (an adapter over the
pipeline's own diffusers VAE with the official normalisation). The VAE is the same Wan 2.1
network on both sides; what generate does with it (which frames go in, how latents are scaled,
what is decoded) stays the official code's.

Only imports are stubbed (decord, torchvision, flash-attn), plus what a CPU needs: the official
code pins bfloat16 and CUDA, and here runs in float32 on the CPU, where a 1e-4 comparison means
something.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.metadata
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# The tiny official model. Its face adapter comes after every 5th block (fixed in the official
# class), so 5 blocks hold one adapter; the motion encoder's width (512) and the face encoder's
# (1024 x 4 heads) are fixed in the official classes too, only the face size can shrink.
DIM, HEADS, FFN, FREQ, TEXT_DIM, LAYERS = 24, 2, 32, 32, 32, 5
FACE = 8  # face crops, pixels a side (512 in the real model)
CLIP_TOKENS, CLIP_DIM = 257, 1280  # what the official cross-attention slices off the context


@functools.cache
def official() -> types.SimpleNamespace:
    """The official modules, imported without running ``wan/__init__`` (which loads every task)."""
    import diffusers  # noqa: F401 - imported before the stubs so it never sees them
    import transformers  # noqa: F401

    spec = importlib.util.find_spec("wan")
    assert spec is not None, (
        "the official Wan2.2 code (wan22) is part of the test environment: tools/dev.py setup"
    )
    version = importlib.metadata.version("wan22")
    assert version == "2.2.11", f"wan22 {version} installed; these tests compare with 2.2.11"
    names = ("decord", "torchvision", "torchvision.transforms")
    saved = {k: sys.modules.get(k) for k in names}
    decord = types.ModuleType("decord")
    decord.VideoReader = None  # only its video reading, which these tests replace, uses it
    tv, tvt = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    tv.transforms = tvt
    package = types.ModuleType("wan")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules.update({"decord": decord, "torchvision": tv, "torchvision.transforms": tvt})
    # Another test module may have registered the bare package already.
    sys.modules.setdefault("wan", package)
    current_device = torch.cuda.current_device
    # t5.py evaluates torch.cuda.current_device() as a default argument at import time.
    torch.cuda.current_device = lambda: 0
    try:
        import wan.animate as animate
        import wan.modules.animate.animate_utils as animate_utils
        import wan.modules.animate.face_blocks as face_blocks
        import wan.modules.animate.model_animate as model_animate
        import wan.modules.animate.motion_encoder as motion_encoder
        import wan.modules.attention as attention
        import wan.utils.fm_solvers as fm_solvers
    finally:
        torch.cuda.current_device = current_device
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    # Attention: flash-attn is absent here. The DiT's calls take the official attention()'s own
    # SDPA fallback (in float32, not its bfloat16 default); the face blocks' flash_attn_func
    # import gets the same computation from SDPA.
    model_animate.flash_attention = functools.partial(attention.attention, dtype=torch.float32)
    face_blocks.flash_attn_func = _flash_attn_func
    return types.SimpleNamespace(
        animate=animate,
        model_animate=model_animate,
        motion_encoder=motion_encoder,
        animate_utils=animate_utils,
        fm_solvers=fm_solvers,
    )


def _flash_attn_func(q, k, v):
    """flash_attn.flash_attn_func's result ([B, S, H, D] in and out, 1/sqrt(D) scale) from SDPA."""
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    )
    return out.transpose(1, 2)


class _Float32Torch(types.ModuleType):
    """``torch`` as wan/animate.py sees it, with its pinned bfloat16 read as float32."""

    bfloat16 = torch.float32

    def __getattr__(self, name):
        return getattr(torch, name)


@contextlib.contextmanager
def float32_generate():
    animate = official().animate
    animate.torch = _Float32Torch("torch")
    try:
        yield
    finally:
        animate.torch = torch


def tiny_official_model(seed: int = 0):
    """An official WanAnimateModel, small, every parameter random (its own init zeroes the head)."""
    o = official()
    model = o.model_animate.WanAnimateModel(
        dim=DIM, ffn_dim=FFN, freq_dim=FREQ, text_dim=TEXT_DIM, num_heads=HEADS, num_layers=LAYERS
    )
    # The official class fixes the face size at 512: the same official encoder class, smaller.
    model.motion_encoder = o.motion_encoder.Generator(size=FACE, style_dim=512, motion_dim=20)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if name.startswith("motion_encoder."):
                p.copy_(r)  # its Equal* layers scale by 1/sqrt(fan-in) themselves
            elif p.ndim >= 2:
                p.copy_(r / max(1, p[0].numel()) ** 0.5)
            elif name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or "norm" in name:
                p.copy_(1 + 0.2 * r)
            else:
                p.copy_(0.2 * r)
    return model.eval().requires_grad_(False)


# Official -> diffusers names. Each rule: official regex, diffusers template. The face adapter's
# fused key/value Linear is split in two by to_diffusers_state.
_RULES = [
    (r"patch_embedding\.(weight|bias)", r"patch_embedding.\1"),
    (r"pose_patch_embedding\.(weight|bias)", r"pose_patch_embedding.\1"),
    (r"text_embedding\.0\.(weight|bias)", r"condition_embedder.text_embedder.linear_1.\1"),
    (r"text_embedding\.2\.(weight|bias)", r"condition_embedder.text_embedder.linear_2.\1"),
    (r"time_embedding\.0\.(weight|bias)", r"condition_embedder.time_embedder.linear_1.\1"),
    (r"time_embedding\.2\.(weight|bias)", r"condition_embedder.time_embedder.linear_2.\1"),
    (r"time_projection\.1\.(weight|bias)", r"condition_embedder.time_proj.\1"),
    (r"img_emb\.proj\.0\.(weight|bias)", r"condition_embedder.image_embedder.norm1.\1"),
    (r"img_emb\.proj\.1\.(weight|bias)", r"condition_embedder.image_embedder.ff.net.0.proj.\1"),
    (r"img_emb\.proj\.3\.(weight|bias)", r"condition_embedder.image_embedder.ff.net.2.\1"),
    (r"img_emb\.proj\.4\.(weight|bias)", r"condition_embedder.image_embedder.norm2.\1"),
    (r"head\.modulation", r"scale_shift_table"),
    (r"head\.head\.(weight|bias)", r"proj_out.\1"),
    (r"blocks\.(\d+)\.modulation", r"blocks.\1.scale_shift_table"),
    (r"blocks\.(\d+)\.self_attn\.([qkv])\.(weight|bias)", r"blocks.\1.attn1.to_\2.\3"),
    (r"blocks\.(\d+)\.self_attn\.o\.(weight|bias)", r"blocks.\1.attn1.to_out.0.\2"),
    (r"blocks\.(\d+)\.self_attn\.norm_([qk])\.weight", r"blocks.\1.attn1.norm_\2.weight"),
    (r"blocks\.(\d+)\.cross_attn\.([qkv])\.(weight|bias)", r"blocks.\1.attn2.to_\2.\3"),
    (r"blocks\.(\d+)\.cross_attn\.o\.(weight|bias)", r"blocks.\1.attn2.to_out.0.\2"),
    (r"blocks\.(\d+)\.cross_attn\.norm_([qk])\.weight", r"blocks.\1.attn2.norm_\2.weight"),
    (r"blocks\.(\d+)\.cross_attn\.([kv])_img\.(weight|bias)", r"blocks.\1.attn2.add_\2_proj.\3"),
    (r"blocks\.(\d+)\.cross_attn\.norm_k_img\.weight", r"blocks.\1.attn2.norm_added_k.weight"),
    # The official block's affine norm before cross-attention is its norm3; diffusers' norm2.
    (r"blocks\.(\d+)\.norm3\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"blocks\.(\d+)\.ffn\.0\.(weight|bias)", r"blocks.\1.ffn.net.0.proj.\2"),
    (r"blocks\.(\d+)\.ffn\.2\.(weight|bias)", r"blocks.\1.ffn.net.2.\2"),
    (r"face_adapter\.fuser_blocks\.(\d+)\.linear1_q\.(weight|bias)", r"face_adapter.\1.to_q.\2"),
    (r"face_adapter\.fuser_blocks\.(\d+)\.linear2\.(weight|bias)", r"face_adapter.\1.to_out.\2"),
    (r"face_adapter\.fuser_blocks\.(\d+)\.([qk])_norm\.weight", r"face_adapter.\1.norm_\2.weight"),
    (r"face_encoder\.(conv1_local|conv2|conv3)\.conv\.(weight|bias)", r"face_encoder.\1.\2"),
    (r"face_encoder\.(out_proj)\.(weight|bias)", r"face_encoder.\1.\2"),
    (r"face_encoder\.padding_tokens", r"face_encoder.padding_tokens"),
    (r"motion_encoder\.enc\.fc\.(\d+)\.(weight|bias)", r"motion_encoder.motion_network.\1.\2"),
    (r"motion_encoder\.dec\.direction\.weight", r"motion_encoder.motion_synthesis_weight"),
    (r"motion_encoder\.enc\.net_app\.convs\.0\.0\.weight", r"motion_encoder.conv_in.weight"),
    (r"motion_encoder\.enc\.net_app\.convs\.0\.1\.bias", r"motion_encoder.conv_in.act_fn.bias"),
]


def _motion_res_block(name: str, last_conv: int) -> str | None:
    """The appearance encoder's numbered convs: 0 in, 1..n-1 residual blocks, n the 4x4 out conv."""
    import re

    m = re.fullmatch(r"motion_encoder\.enc\.net_app\.convs\.(\d+)\.(.+)", name)
    if m is None:
        return None
    i, rest = int(m.group(1)), m.group(2)
    if i == last_conv and rest == "weight":
        return "motion_encoder.conv_out.weight"
    if i == 0:
        return None
    block = f"motion_encoder.res_blocks.{i - 1}"
    parts = {
        "conv1.0.weight": "conv1.weight",
        "conv1.1.bias": "conv1.act_fn.bias",
        "conv2.1.weight": "conv2.weight",
        "conv2.2.bias": "conv2.act_fn.bias",
        "skip.1.weight": "conv_skip.weight",
        # The blur filters are fixed buffers, the same [1, 3, 3, 1] kernel on both sides.
        "conv2.0.kernel": "conv2.blur_kernel",
        "skip.0.kernel": "conv_skip.blur_kernel",
    }
    return f"{block}.{parts[rest]}" if rest in parts else None


def to_diffusers_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The official model's state dict in diffusers' WanAnimateTransformer3DModel names, and the
    official keys no rule took (empty when the mapping is complete)."""
    import re

    convs = [
        int(m.group(1)) for k in state if (m := re.match(r"motion_encoder\.enc\.net_app\.convs\.(\d+)\.", k))
    ]
    last_conv = max(convs)
    out: dict[str, torch.Tensor] = {}
    left: list[str] = []
    for key, value in state.items():
        m = re.fullmatch(r"face_adapter\.fuser_blocks\.(\d+)\.linear1_kv\.(weight|bias)", key)
        if m:
            # One Linear gives [keys; values] stacked along its outputs.
            k, v = value.chunk(2, dim=0)
            out[f"face_adapter.{m.group(1)}.to_k.{m.group(2)}"] = k
            out[f"face_adapter.{m.group(1)}.to_v.{m.group(2)}"] = v
            continue
        name = _motion_res_block(key, last_conv)
        if name is None:
            for pattern, template in _RULES:
                if re.fullmatch(pattern, key):
                    name = re.sub(pattern, template, key)
                    break
        if name is None:
            left.append(key)
            continue
        # The official leaky-ReLU biases are stored as (1, C, 1, 1); diffusers' as (C,).
        out[name] = value.reshape(-1) if name.endswith("act_fn.bias") else value
    return out, left


def diffusers_transformer(official_model):
    """diffusers' WanAnimateTransformer3DModel holding the official model's weights."""
    from diffusers import WanAnimateTransformer3DModel

    transformer = WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=HEADS,
        attention_head_dim=DIM // HEADS,
        in_channels=36,
        latent_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=FREQ,
        ffn_dim=FFN,
        num_layers=LAYERS,
        image_dim=CLIP_DIM,
        added_kv_proj_dim=DIM,
        rope_max_seq_len=1024,
        motion_encoder_size=FACE,
        motion_style_dim=512,
        motion_dim=20,
        motion_encoder_dim=512,
        face_encoder_hidden_dim=1024,
        face_encoder_num_heads=4,
        inject_face_latents_blocks=5,
        motion_encoder_batch_size=8,
    )
    state, left = to_diffusers_state(official_model.state_dict())
    if left:
        raise AssertionError(f"official weights with no diffusers name: {left}")
    buffers = dict(transformer.named_buffers())
    for name in [k for k in state if k.endswith("blur_kernel")]:
        # Fixed filters, not weights: diffusers computes its own, which must be the same.
        if not torch.equal(state.pop(name), buffers[name]):
            raise AssertionError(f"{name} differs from the official blur kernel")
    missing, unexpected = transformer.load_state_dict(state, strict=False)
    # rope tables are computed, not stored
    missing = [k for k in missing if not k.startswith("rope.")]
    if missing or unexpected:
        raise AssertionError(f"mapping incomplete: missing {missing}, unexpected {unexpected}")
    return transformer.eval().requires_grad_(False)


def tiny_pipeline(folder: Path, transformer):
    """The project's tiny pipeline (backend.env.tiny_model) with the mapped transformer and a
    CLIP giving the official model's 257 x 1280 image features."""
    from diffusers import WanAnimatePipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from backend.env.tiny_model import make_tiny_model

    make_tiny_model(folder)
    torch.manual_seed(1)
    clip = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=CLIP_DIM,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=224,
            patch_size=14,
        )
    ).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    return WanAnimatePipeline.from_pretrained(
        str(folder), transformer=transformer, image_encoder=clip, image_processor=processor
    )


class _TextEncoder:
    """The official T5EncoderModel's call: [prompt] -> [context], from the pipeline's encoder."""

    def __init__(self, pipe) -> None:
        self.pipe = pipe

    def __call__(self, texts, device):
        embeds, _ = self.pipe.encode_prompt(
            prompt=texts, do_classifier_free_guidance=False, max_sequence_length=512, device=device
        )
        return [e for e in embeds]


class _Clip:
    """The official CLIPModel.visual: [(3, 1, H, W) in [-1, 1]] -> features, from the pipeline's CLIP
    fed the very picture the official code hands over."""

    def __init__(self, pipe) -> None:
        self.pipe = pipe

    def visual(self, videos):
        from PIL import Image

        pixels = ((videos[0][:, 0].float().permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
        return self.pipe.encode_image(Image.fromarray(pixels.to(torch.uint8).numpy()), "cpu")


class _Vae:
    """The official Wan2_1_VAE's encode/decode over lists, normalised as the official one is
    ((mu - mean) / std in, z * std + mean out, decoded frames clamped to [-1, 1])."""

    def __init__(self, vae) -> None:
        self.vae = vae
        z = vae.config.z_dim
        self.mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1)

    def encode(self, videos):
        out = []
        for u in videos:
            mu = self.vae.encode(u.unsqueeze(0).float()).latent_dist.mode()
            out.append(((mu - self.mean) * self.inv_std).float().squeeze(0))
        return out

    def decode(self, zs):
        out = []
        for z in zs:
            x = self.vae.decode(z.unsqueeze(0) / self.inv_std + self.mean, return_dict=False)[0]
            out.append(x.float().clamp_(-1, 1).squeeze(0))
        return out


@dataclass
class Clip:
    """One job's inputs as uint8 arrays: what the official preprocessing writes to disk."""

    pose: np.ndarray  # (N, H, W, 3)
    face: np.ndarray  # (N, FACE, FACE, 3)
    reference: np.ndarray  # (H, W, 3)
    background: np.ndarray | None = None  # (N, H, W, 3)
    mask: np.ndarray | None = None  # (N, H, W) 0 / 255


def official_generator(pipe, noise_model, clip: Clip, lora_folder: Path | None = None):
    """WanAnimate built around ``noise_model`` without loading checkpoints; with ``lora_folder``
    its own _configure_model loads the relighting LoRA from there, as the official one does."""
    from easydict import EasyDict

    o = official()
    wan = object.__new__(o.animate.WanAnimate)
    wan.device = torch.device("cpu")
    wan.rank, wan.sp_size, wan.t5_cpu, wan.init_on_cpu = 0, 1, True, True
    wan.num_train_timesteps = 1000
    wan.param_dtype = torch.float32
    cfg = _official_config()
    wan.sample_neg_prompt, wan.sample_prompt = cfg.sample_neg_prompt, cfg.prompt
    wan.text_encoder, wan.clip, wan.vae = _TextEncoder(pipe), _Clip(pipe), _Vae(pipe.vae)
    model = copy.deepcopy(noise_model)
    if lora_folder is not None:
        model = wan._configure_model(
            model=model,
            use_sp=False,
            dit_fsdp=False,
            shard_fn=None,
            convert_model_dtype=False,
            use_lora=True,
            checkpoint_dir=str(lora_folder),
            config=EasyDict(lora_checkpoint="relighting_lora.ckpt"),
        )
    wan.noise_model = model.eval()

    # Reading the preprocessed videos (decord) is replaced by the arrays themselves.
    def prepare_source(src_pose_path, src_face_path, src_ref_path):
        h, w = clip.pose.shape[1:3]
        return list(clip.pose), list(clip.face), wan.padding_resize(clip.reference, height=h, width=w)

    def prepare_source_for_replace(src_bg_path, src_mask_path):
        return list(clip.background), list(clip.mask / 255)

    wan.prepare_source = prepare_source
    wan.prepare_source_for_replace = prepare_source_for_replace
    return wan


@functools.cache
def _official_config():
    import wan.configs.wan_animate_14B as c  # noqa: F401 - needs official() first

    return c.animate_14B


def official_config():
    official()
    return _official_config()


def write_relighting_lora(official_model, folder: Path, seed: int = 3) -> Path:
    """A relighting_lora.ckpt as the official one is stored (PEFT state of the official
    get_loraconfig, rank = alpha = 128, under "state_dict"), with random non-zero weights."""
    from peft import get_peft_model_state_dict

    o = official()
    model = copy.deepcopy(official_model)
    model.add_adapter(o.animate_utils.get_loraconfig(transformer=model, rank=128, alpha=128))
    g = torch.Generator().manual_seed(seed)
    state = get_peft_model_state_dict(model)
    # PEFT starts lora_B at zero (no effect); the real file's are trained.
    state = {
        k: torch.randn(v.shape, generator=g) * (0.02 if "lora_B" in k else 0.2) for k, v in state.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "relighting_lora.ckpt"
    torch.save({"state_dict": state}, path)
    return path
