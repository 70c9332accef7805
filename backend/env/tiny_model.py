"""``python -m backend make-tiny-model DIR``: a randomly initialised Wan-Animate
pipeline with the same folder layout as Wan-AI/Wan2.2-Animate-14B-Diffusers, small
enough to run on a CPU in about a second. Tests and the demo load it through the
exact code path used for the real weights. Its outputs are noise-like by design,
and every job run on it is marked as such in job.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model.model_folder import TINY_MARKER

# Where replace mode looks for SAM2 (backend/preprocess/segment_sam2.py, SAM2_FOLDER).
SAM2_FOLDER = "sam2"


def make_tiny_model(target: Path, seed: int = 0, sam2: bool = False) -> Path:
    """``sam2``: also a tiny random SAM2 in ``target/sam2``, so replace masks take SAM2's path
    (without it they come from the embedded mediapipe fallback, as with weights lacking SAM2)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanAnimatePipeline

    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; choose a new folder for the tiny model")

    torch.manual_seed(seed)
    # Made in this order: each part's random weights are the next draws of the seed's stream.
    tokenizer, text_encoder = _tiny_text_encoder()
    image_processor, image_encoder = _tiny_image_encoder()
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
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
        transformer=_tiny_animate_transformer(),
    )
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    if sam2:
        make_tiny_sam2(target / SAM2_FOLDER, seed)
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


def _tiny_text_encoder() -> tuple[Any, Any]:
    from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

    # A small word-piece vocabulary is enough: prompts only need to tokenize.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"\u2581{c}", -float(i)) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]
    pieces += [(c, -30.0 - i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    config = UMT5Config(
        vocab_size=len(pieces),
        d_model=32,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
    )
    return tokenizer, UMT5EncoderModel(config)


def _tiny_image_encoder() -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

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
    return CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ), image_encoder


def _tiny_animate_transformer() -> Any:
    from diffusers import WanAnimateTransformer3DModel

    return WanAnimateTransformer3DModel(
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


def make_tiny_sam2(target: Path, seed: int = 0) -> Path:
    """A randomly initialised SAM2 video model (about 4 MB) in the layout of the real one, for
    tests and demos: the same ``from_pretrained`` path, masks without meaning. Its hidden size
    stays above SAM2's fixed 64-channel memory (transformers splits object pointers only then)."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    size = 128
    cfg = Sam2VideoConfig(
        vision_config={
            "model_type": "sam2_vision_model",
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "hidden_size": 8,
                "image_size": [size, size],
                "blocks_per_stage": [1, 1, 2, 1],
                "embed_dim_per_stage": [8, 16, 32, 64],
                "num_attention_heads_per_stage": [1, 1, 1, 1],
                "window_size_per_stage": [4, 4, 4, 4],
                # A global block may not open a stage (its window would pool to zero).
                "global_attention_blocks": [3],
                "window_positional_embedding_background_size": [4, 4],
            },
            "backbone_channel_list": [64, 32, 16, 8],
            "backbone_feature_sizes": [[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
            "fpn_hidden_size": 128,
        },
        prompt_encoder_config={"hidden_size": 128, "image_size": size, "patch_size": 16},
        mask_decoder_config={
            "hidden_size": 128,
            "mlp_dim": 32,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 16,
        },
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=128,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=32,
    )
    torch.manual_seed(seed)
    Sam2VideoModel(cfg).save_pretrained(Path(target))
    return Path(target)


def make_tiny_animate2(target: Path, engine: str = "wan-animate-2", seed: int = 0) -> Path:
    """A tiny random Wan-Animate-2 pipeline in ``target/<engine folder>``, in the layout of the
    real checkpoint (modular_model_index.json and one folder per component), its index pointing
    at the hub repository as a downloaded copy's does: loading takes the same local-copy path.
    The distilled kind has the same layout; its index names the distilled pipeline."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanAnimate2Transformer3DModel
    from diffusers.modular_pipelines import WanAnimate2Blocks, WanAnimate2DistilledBlocks
    from transformers import CLIPVisionConfig, CLIPVisionModel, T5Tokenizer, UMT5Config, UMT5EncoderModel

    from ..model.animate2_layout import ENGINE_FOLDERS, HF_REPO_IDS

    folder = Path(target) / ENGINE_FOLDERS[engine]
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; choose a new folder for the tiny model")
    torch.manual_seed(seed)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"\u2581{c}", -float(i)) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]
    pieces += [(c, -30.0 - i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")]
    config = UMT5Config(
        vocab_size=len(pieces),
        d_model=32,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
    )
    # The transformer projects CLIP's 1280-wide features (fixed in its code); one layer keeps it small.
    clip = CLIPVisionConfig(
        hidden_size=1280,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=1,
        image_size=224,
        patch_size=56,
    )
    blocks = WanAnimate2DistilledBlocks() if engine.endswith("distilled") else WanAnimate2Blocks()
    pipe = blocks.init_pipeline()
    pipe.update_components(
        tokenizer=T5Tokenizer(vocab=pieces, extra_ids=0),
        text_encoder=UMT5EncoderModel(config),
        image_encoder=CLIPVisionModel(clip),
        vae=AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ),
        transformer=WanAnimate2Transformer3DModel(
            dim=24, ffn_dim=32, freq_dim=32, text_dim=32, num_heads=2, num_layers=2
        ),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipe.save_pretrained(str(folder), overwrite_modular_index=True)
    index_file = folder / "modular_model_index.json"
    index = json.loads(index_file.read_text())
    for value in index.values():
        if isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict):
            value[2]["pretrained_model_name_or_path"] = HF_REPO_IDS[engine]
    index_file.write_text(json.dumps(index, indent=2))
    (folder / TINY_MARKER).write_text(
        json.dumps({"tiny_random_model": True, "engine": engine, "seed": seed}, indent=2)
    )
    return folder
