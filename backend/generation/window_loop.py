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


def unit(video: torch.Tensor) -> np.ndarray:
    """VAE output (1, C, T, H, W) in [-1, 1] -> (T, H, W, C) float in [0, 1]."""
    return (video[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).cpu().numpy()


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """VAE output (1, C, T, H, W) in [-1, 1] -> (T, H, W, C) uint8, halves rounded up as the
    official generate's frames are; every engine saves its frames through this."""
    return (unit(video) * 255 + 0.5).astype(np.uint8)


def apply_colour(video: torch.Tensor, gain: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """Apply a gain/offset found in [0, 1] units to video in [-1, 1] units."""
    # y = (x + 1) / 2 and y' = g y + o give x' = g x + (g + 2 o - 1).
    g = torch.as_tensor(gain, dtype=video.dtype, device=video.device).view(1, -1, 1, 1, 1)
    o = torch.as_tensor(gain + 2 * offset - 1, dtype=video.dtype, device=video.device).view(1, -1, 1, 1, 1)
    return (video * g + o).clamp(-1, 1)


def generate_windows(
    pipe: Any, inp: WindowInputs, store: WindowStore, on_step: StepHook
) -> tuple[list[Window], WindowTimings]:
    """Generate every window not already in ``store``; the frames are read back from it."""
    windows, _padded = plan_windows(len(inp.pose), inp.segment, inp.overlap)
    timings = WindowTimings()
    done = store.finished(len(windows))
    timings.resumed_windows = done
    if done == len(windows):
        return windows, timings
    t0 = time.perf_counter()
    enc = _encode_once(pipe, inp)
    timings.encode_s += time.perf_counter() - t0
    prev_tail: torch.Tensor | None = None
    for win in windows:
        # Drawn even for a saved window: window k's noise is the k-th draw of the seed's stream.
        noise = pipe.prepare_latents(
            1, enc.z_dim, inp.height, inp.width, inp.segment, torch.float32, enc.device, enc.generator
        )
        if win.index < done:
            if win.index == done - 1:
                prev_tail = store.tail(win.index).to(enc.device)
            continue
        t0 = time.perf_counter()
        cond = _condition_window(pipe, inp, enc, win, prev_tail)
        timings.encode_s += time.perf_counter() - t0

        t0 = time.perf_counter()
        latents, skipped = _denoise_window(
            pipe, inp, enc, cond, noise, lambda steps, w=win: on_step(w.index + 1, len(windows), steps, False)
        )
        timings.denoise_s += time.perf_counter() - t0
        timings.skipped_steps += skipped

        on_step(win.index + 1, len(windows), inp.steps, True)
        t0 = time.perf_counter()
        out = _decode_window(pipe, enc, latents)
        timings.decode_s += time.perf_counter() - t0
        if inp.colour_match and prev_tail is not None:
            out = _match_previous_tail(out, prev_tail, inp.overlap, timings)
        prev_tail = _save_window(store, win, out, inp.overlap)
        del out, latents, cond
    return windows, timings


@dataclass
class _Encoded:
    """What every window shares, encoded once per job."""

    device: Any
    dtype: torch.dtype
    guided: bool  # guidance above 1: an unconditional pass per step
    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    image_embeds: torch.Tensor
    reference: torch.Tensor  # the character image's latents
    face_size: int
    generator: torch.Generator  # the seed's one stream: the reference, then each window's draws
    z_dim: int
    latents_mean: torch.Tensor
    latents_std: torch.Tensor


@dataclass
class _WindowCond:
    face: torch.Tensor
    pose_latents: torch.Tensor
    reference_latents: torch.Tensor  # the reference image's, then the previous tail's / background's


def _encode_once(pipe: Any, inp: WindowInputs) -> _Encoded:
    device = pipe._execution_device
    dtype = pipe.transformer.dtype
    guided = inp.guidance_scale > 1.0
    prompt_embeds, negative_embeds = pipe.encode_prompt(
        prompt=inp.prompt,
        negative_prompt=inp.negative_prompt or OFFICIAL_NEGATIVE_PROMPT,
        do_classifier_free_guidance=guided,
        num_videos_per_prompt=1,
        max_sequence_length=512,
        device=device,
    )
    image_embeds = pipe.encode_image(inp.image, device).to(dtype)
    image_pixels = pipe.vae_image_processor.preprocess(
        inp.image, height=inp.height, width=inp.width, resize_mode="fill"
    ).to(device, dtype=torch.float32)
    generator = torch.Generator(device="cpu").manual_seed(int(inp.seed))
    reference = pipe.prepare_reference_image_latents(image_pixels, 1, generator=generator, device=device)
    z_dim = pipe.vae.config.z_dim
    return _Encoded(
        device=device,
        dtype=dtype,
        guided=guided,
        prompt_embeds=prompt_embeds.to(dtype),
        negative_embeds=None if negative_embeds is None else negative_embeds.to(dtype),
        image_embeds=image_embeds,
        reference=reference,
        face_size=int(pipe.transformer.config.motion_encoder_size),
        generator=generator,
        z_dim=z_dim,
        latents_mean=torch.tensor(pipe.vae.config.latents_mean).view(1, z_dim, 1, 1, 1),
        latents_std=torch.tensor(pipe.vae.config.latents_std).view(1, z_dim, 1, 1, 1),
    )


def _window_video(
    pipe: Any, device: Any, frames: list, win: Window, h: int, w: int, processor: Any = None
) -> torch.Tensor:
    # Only this window's frames are ever resized and moved to the device, so a long clip
    # costs no more accelerator memory than a short one.
    picked = [frames[bounce_index(i, len(frames))] for i in range(win.start, win.end)]
    proc = processor or pipe.video_processor
    return proc.preprocess_video(picked, height=h, width=w).to(device, dtype=torch.float32)


def _condition_window(
    pipe: Any, inp: WindowInputs, enc: _Encoded, win: Window, prev_tail: torch.Tensor | None
) -> _WindowCond:
    device, h, w = enc.device, inp.height, inp.width
    face = _window_video(pipe, device, inp.face, win, enc.face_size, enc.face_size).to(enc.dtype)
    pose = _window_video(pipe, device, inp.pose, win, h, w)
    pose_latents = pipe.prepare_pose_latents(pose, 1, generator=enc.generator, device=device).to(enc.dtype)
    replace = inp.mode == "replace"
    cond = pipe.prepare_prev_segment_cond_latents(
        prev_tail,
        background_video=_window_video(pipe, device, inp.background, win, h, w) if replace else None,
        mask_video=_window_video(pipe, device, inp.mask, win, h, w, pipe.video_processor_for_mask)
        if replace
        else None,
        batch_size=1,
        segment_frame_length=inp.segment,
        start_frame=win.start,
        height=h,
        width=w,
        prev_segment_cond_frames=inp.overlap,
        task=inp.mode,
        generator=enc.generator,
        device=device,
    )
    return _WindowCond(face, pose_latents, torch.cat([enc.reference, cond], dim=2))


def _denoise_window(
    pipe: Any,
    inp: WindowInputs,
    enc: _Encoded,
    cond: _WindowCond,
    latents: torch.Tensor,
    on_step: Callable[[int], None],
) -> tuple[torch.Tensor, int]:
    """The window's latents after every step, and how many transformer passes the cache saved."""
    sampler = make_sampler(inp.sampler, inp.steps, enc.device, inp.shift)
    cache = StepCache(inp.step_cache, inp.steps)
    for i, t in enumerate(sampler.timesteps):
        noise_pred = cache.cached(i, latents)
        if noise_pred is None:
            noise_pred = _predict_noise(pipe, inp.guidance_scale, enc, cond, latents, t)
            cache.computed(latents, noise_pred)
        latents = sampler.step(noise_pred, t, latents)
        on_step(i + 1)
    return latents, cache.skipped


def _predict_noise(
    pipe: Any, guidance: float, enc: _Encoded, cond: _WindowCond, latents: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    common = dict(
        hidden_states=torch.cat([latents, cond.reference_latents], dim=1).to(enc.dtype),
        timestep=t.expand(latents.shape[0]),
        encoder_hidden_states_image=enc.image_embeds,
        pose_hidden_states=cond.pose_latents,
        return_dict=False,
    )
    with pipe.transformer.cache_context("cond"):
        noise_pred = pipe.transformer(
            encoder_hidden_states=enc.prompt_embeds, face_pixel_values=cond.face, **common
        )[0]
    if not enc.guided:
        return noise_pred
    # The unconditional pass blanks the face: guidance strengthens the expression.
    with pipe.transformer.cache_context("uncond"):
        noise_uncond = pipe.transformer(
            encoder_hidden_states=enc.negative_embeds, face_pixel_values=cond.face * 0 - 1, **common
        )[0]
    return noise_uncond + guidance * (noise_pred - noise_uncond)


def _decode_window(pipe: Any, enc: _Encoded, latents: torch.Tensor) -> torch.Tensor:
    latents = latents.to(pipe.vae.dtype)
    latents = latents * enc.latents_std.to(latents) + enc.latents_mean.to(latents)
    # The first latent frame holds the reference image, not output.
    return pipe.vae.decode(latents[:, :, 1:], return_dict=False)[0]


def _match_previous_tail(
    out: torch.Tensor, prev_tail: torch.Tensor, overlap: int, timings: WindowTimings
) -> torch.Tensor:
    # This window's first frames re-generate the previous (already matched) window's tail, so
    # matching them to it chains every window back to the first one.
    found = match_colours(unit(prev_tail), unit(out[:, :, :overlap]))
    if found is None:
        timings.colour_gains.append(None)  # the overlap was not followed: left as is
        return out
    gain, offset, _score = found
    timings.colour_gains.append([round(float(g), 4) for g in gain])
    return apply_colour(out, gain, offset)


def _save_window(store: WindowStore, win: Window, out: torch.Tensor, overlap: int) -> torch.Tensor:
    """Save the window's new frames; its tail (which the next window re-generates) comes back."""
    tail = out[:, :, -overlap:].clone()
    store.save(win.index, to_uint8(out[:, :, win.keep_from :]), tail)
    return tail


def assemble(store: WindowStore, windows: list[Window], n_frames: int) -> list[np.ndarray]:
    """The clip's frames (uint8 arrays, memory-mapped from the window files), padding cut off."""
    out: list[np.ndarray] = []
    for win in windows:
        out.extend(store.frames(win.index))
    return out[:n_frames]
