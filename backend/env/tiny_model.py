"""``python -m backend make-tiny-model DIR``: a randomly initialised Wan-Animate
pipeline with the same folder layout as Wan-AI/Wan2.2-Animate-14B-Diffusers, small
enough to run on a CPU in about a second. Tests and the demo load it through the
exact code path used for the real weights. Its outputs are noise-like by design,
and every job run on it is marked as such in job.json."""

from __future__ import annotations

import json
from pathlib import Path

TINY_MARKER = "wan_animate_tiny_model.json"


def make_tiny_model(target: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanAnimatePipeline,
        WanAnimateTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        T5Tokenizer,
        UMT5Config,
        UMT5EncoderModel,
    )

    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; choose a new folder for the tiny model")

    torch.manual_seed(seed)
    # A small word-piece vocabulary is enough: prompts only need to tokenize.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"\u2581{c}", -float(i)) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]
    pieces += [(c, -30.0 - i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(pieces),
            d_model=32,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
        )
    )
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=8,
        )
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        latent_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        image_dim=8,
        added_kv_proj_dim=24,
        rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16, "32": 16},
        motion_encoder_size=32,
        motion_style_dim=16,
        motion_dim=4,
        motion_encoder_dim=16,
        face_encoder_hidden_dim=16,
        face_encoder_num_heads=2,
        inject_face_latents_blocks=1,
        motion_encoder_batch_size=4,
    )
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
    )
    pipe = WanAnimatePipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=image_processor,
        image_encoder=image_encoder,
        transformer=transformer,
    )
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    (target / TINY_MARKER).write_text(
        json.dumps(
            {
                "tiny_random_model": True,
                "seed": seed,
                "note": "Random weights for tests and demos; outputs are not meaningful.",
            },
            indent=2,
        )
    )
    return target


def is_tiny_model(model_dir: Path) -> bool:
    return (Path(model_dir) / TINY_MARKER).is_file()
