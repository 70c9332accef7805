"""The denoising loop over model windows, one window at a time, each saved as it finishes.

diffusers' WanAnimatePipeline.__call__ runs every window in one call and returns the whole
clip at the end: a crash or a cancel in window 9 of 10 loses all of it, and nothing can be
done between windows. This loop drives the same pipeline components (its encoders, latent
preparation, transformer and VAE) window by window so that each finished window
goes to disk, a re-run of the same job resumes after the last saved one, and colour drift
can be corrected at each hand-off before the next window is conditioned on it.

The initial noise of window k is the k-th draw from one generator seeded with the job's seed,
which is what the official Wan2.2 ``WanAnimate.generate`` (and the pipeline's own loop) draws,
so a resumed job gives the frames an uninterrupted one would have. The samplers and the negative
prompt are the official code's (sampler.py), not the pipeline's: with colour matching off, every
window's latents and frames are those of the official generate, to float32 precision
(tests/test_official_generate.py), with either sampler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .colour_match import match_colours
from .sampler import DEFAULT_SAMPLER, DEFAULT_SHIFT, make_sampler
from .step_cache import StepCache
from .window_plan import Window, bounce_index, plan_windows
from .window_store import WindowStore

# The official negative prompt (Wan2.2's shared config), which its generate uses when none is given;
# diffusers' pipeline uses an empty one. It only matters with guidance above 1.
OFFICIAL_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


@dataclass
class WindowInputs:
    image: Any  # PIL image, the character at the output size
    pose: list  # PIL frames
    face: list
    background: list | None
    mask: list | None
    prompt: str
    width: int
    height: int
    segment: int
    overlap: int
    steps: int
    mode: str
    guidance_scale: float
    seed: int
    colour_match: bool = True
    step_cache: float = 0.0
    sampler: str = DEFAULT_SAMPLER  # sampler.SAMPLERS
    shift: float = DEFAULT_SHIFT
    negative_prompt: str = ""  # empty: the official one


@dataclass
class WindowTimings:
    encode_s: float = 0.0
    denoise_s: float = 0.0
    decode_s: float = 0.0
    resumed_windows: int = 0
    skipped_steps: int = 0  # transformer passes the step cache saved
    colour_gains: list = field(default_factory=list)


# (window from 1, windows, steps done in it, decoding) -> None; raises to stop the job
StepHook = Callable[[int, int, int, bool], None]


def _unit(video: torch.Tensor) -> np.ndarray:
    """VAE output (1, C, T, H, W) in [-1, 1] -> (T, H, W, C) float in [0, 1]."""
    return (video[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).cpu().numpy()


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    """VAE output (1, C, T, H, W) in [-1, 1] -> (T, H, W, C) uint8."""
    return (_unit(video) * 255 + 0.5).astype(np.uint8)


def _apply_colour(video: torch.Tensor, gain: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """Apply a gain/offset found in [0, 1] units to video in [-1, 1] units."""
    # y = (x + 1) / 2 and y' = g y + o give x' = g x + (g + 2 o - 1).
    g = torch.as_tensor(gain, dtype=video.dtype, device=video.device).view(1, -1, 1, 1, 1)
    o = torch.as_tensor(gain + 2 * offset - 1, dtype=video.dtype, device=video.device).view(1, -1, 1, 1, 1)
    return (video * g + o).clamp(-1, 1)


def generate_windows(
    pipe, inp: WindowInputs, store: WindowStore, on_step: StepHook
) -> tuple[list[Window], WindowTimings]:
    """Generate every window not already in ``store``; the frames are read back from it."""
    n = len(inp.pose)
    windows, padded = plan_windows(n, inp.segment, inp.overlap)
    timings = WindowTimings()
    done = store.finished(len(windows))
    timings.resumed_windows = done
    if done == len(windows):
        return windows, timings

    device = pipe._execution_device
    dtype = pipe.transformer.dtype
    cfg = inp.guidance_scale > 1.0
    t0 = time.perf_counter()
    prompt_embeds, negative_embeds = pipe.encode_prompt(
        prompt=inp.prompt,
        negative_prompt=inp.negative_prompt or OFFICIAL_NEGATIVE_PROMPT,
        do_classifier_free_guidance=cfg,
        num_videos_per_prompt=1,
        max_sequence_length=512,
        device=device,
    )
    prompt_embeds = prompt_embeds.to(dtype)
    if negative_embeds is not None:
        negative_embeds = negative_embeds.to(dtype)
    image_embeds = pipe.encode_image(inp.image, device).to(dtype)
    image_pixels = pipe.vae_image_processor.preprocess(
        inp.image, height=inp.height, width=inp.width, resize_mode="fill"
    ).to(device, dtype=torch.float32)
    generator = torch.Generator(device="cpu").manual_seed(int(inp.seed))
    reference = pipe.prepare_reference_image_latents(image_pixels, 1, generator=generator, device=device)
    face_size = int(pipe.transformer.config.motion_encoder_size)
    replace = inp.mode == "replace"
    timings.encode_s += time.perf_counter() - t0

    def window_video(frames: list, win: Window, h: int, w: int, processor=None) -> torch.Tensor:
        # Only this window's frames are ever resized and moved to the device, so a long clip
        # costs no more accelerator memory than a short one.
        picked = [frames[bounce_index(i, len(frames))] for i in range(win.start, win.end)]
        proc = processor or pipe.video_processor
        return proc.preprocess_video(picked, height=h, width=w).to(device, dtype=torch.float32)

    z_dim = pipe.vae.config.z_dim
    latents_mean = torch.tensor(pipe.vae.config.latents_mean).view(1, z_dim, 1, 1, 1)
    latents_std = torch.tensor(pipe.vae.config.latents_std).view(1, z_dim, 1, 1, 1)
    prev_tail: torch.Tensor | None = None
    for win in windows:
        # Drawn even for a saved window: window k's noise is the k-th draw of the seed's stream.
        noise = pipe.prepare_latents(
            1, z_dim, inp.height, inp.width, inp.segment, torch.float32, device, generator
        )
        if win.index < done:
            if win.index == done - 1:
                prev_tail = store.tail(win.index).to(device)
            continue
        t0 = time.perf_counter()
        face_seg = window_video(inp.face, win, face_size, face_size).to(dtype)
        pose_seg = window_video(inp.pose, win, inp.height, inp.width)
        pose_latents = pipe.prepare_pose_latents(pose_seg, 1, generator=generator, device=device).to(dtype)
        cond = pipe.prepare_prev_segment_cond_latents(
            prev_tail,
            background_video=window_video(inp.background, win, inp.height, inp.width) if replace else None,
            mask_video=window_video(inp.mask, win, inp.height, inp.width, pipe.video_processor_for_mask)
            if replace
            else None,
            batch_size=1,
            segment_frame_length=inp.segment,
            start_frame=win.start,
            height=inp.height,
            width=inp.width,
            prev_segment_cond_frames=inp.overlap,
            task=inp.mode,
            generator=generator,
            device=device,
        )
        reference_latents = torch.cat([reference, cond], dim=2)
        del pose_seg
        timings.encode_s += time.perf_counter() - t0

        t0 = time.perf_counter()
        latents = noise
        sampler = make_sampler(inp.sampler, inp.steps, device, inp.shift)
        cache = StepCache(inp.step_cache, inp.steps)
        for i, t in enumerate(sampler.timesteps):
            noise_pred = cache.cached(i, latents)
            if noise_pred is None:
                model_in = torch.cat([latents, reference_latents], dim=1).to(dtype)
                common = dict(
                    hidden_states=model_in,
                    timestep=t.expand(latents.shape[0]),
                    encoder_hidden_states_image=image_embeds,
                    pose_hidden_states=pose_latents,
                    return_dict=False,
                )
                with pipe.transformer.cache_context("cond"):
                    noise_pred = pipe.transformer(
                        encoder_hidden_states=prompt_embeds, face_pixel_values=face_seg, **common
                    )[0]
                if cfg:
                    # The unconditional pass blanks the face: guidance strengthens the expression.
                    with pipe.transformer.cache_context("uncond"):
                        noise_uncond = pipe.transformer(
                            encoder_hidden_states=negative_embeds,
                            face_pixel_values=face_seg * 0 - 1,
                            **common,
                        )[0]
                    noise_pred = noise_uncond + inp.guidance_scale * (noise_pred - noise_uncond)
                cache.computed(latents, noise_pred)
            latents = sampler.step(noise_pred, t, latents)
            on_step(win.index + 1, len(windows), i + 1, False)
        timings.denoise_s += time.perf_counter() - t0
        timings.skipped_steps += cache.skipped

        on_step(win.index + 1, len(windows), inp.steps, True)
        t0 = time.perf_counter()
        latents = latents.to(pipe.vae.dtype)
        latents = latents * latents_std.to(latents) + latents_mean.to(latents)
        # The first latent frame holds the reference image, not output.
        out = pipe.vae.decode(latents[:, :, 1:], return_dict=False)[0]
        timings.decode_s += time.perf_counter() - t0

        if inp.colour_match and prev_tail is not None:
            # This window's first frames re-generate the previous (already matched) window's
            # tail, so matching them to it chains every window back to the first one.
            found = match_colours(_unit(prev_tail), _unit(out[:, :, : inp.overlap]))
            if found is None:
                timings.colour_gains.append(None)  # the overlap was not followed: left as is
            else:
                gain, offset, _score = found
                out = _apply_colour(out, gain, offset)
                timings.colour_gains.append([round(float(g), 4) for g in gain])
        prev_tail = out[:, :, -inp.overlap :].clone()
        store.save(win.index, _to_uint8(out[:, :, win.keep_from :]), prev_tail)
        del out, latents
    return windows, timings


def assemble(store: WindowStore, windows: list[Window], n_frames: int) -> list[np.ndarray]:
    """The clip's frames (uint8 arrays, memory-mapped from the window files), padding cut off."""
    out: list[np.ndarray] = []
    for win in windows:
        out.extend(store.frames(win.index))
    return out[:n_frames]
