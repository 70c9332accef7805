"""The released 14B models' part sizes as stored (bf16), the figures the memory plan's estimates
for real weights start from: one definition for every test and check of the docs' memory figures."""

from __future__ import annotations

from backend.model.memory_plan import GIB, ModelSizes

# Wan2.2-Animate-14B: its transformer config and the sizes of its parts.
WAN_ANIMATE_14B = ModelSizes(
    transformer=int(34.6 * GIB),
    text_encoder=int(11.4 * GIB),
    image_encoder=int(1.26 * GIB),
    vae=int(0.5 * GIB),
    dim=5120,
    ffn_dim=13824,
    layers=40,
)

# Wan-Animate-2 14B: 40 blocks of width 5120 (feed-forward 13824) plus what sits outside them,
# with the umT5-XXL text encoder, the CLIP image encoder and the Wan VAE.
_ANIMATE2_BLOCK = 2 * (10 * 5120 * 5120 + 2 * 5120 * 13824)
ANIMATE2_14B = ModelSizes(
    transformer=40 * _ANIMATE2_BLOCK + 2 * GIB,
    text_encoder=int(11.4 * GIB),
    image_encoder=int(1.2 * GIB),
    vae=int(0.5 * GIB),
    dim=5120,
    ffn_dim=13824,
    layers=40,
)
