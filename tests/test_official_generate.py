"""The backend's generation against the official Wan2.2 ``WanAnimate.generate``: the same tiny
random model (the official WanAnimateModel, its weights mapped into diffusers' transformer), the
same text/CLIP features and VAE, the same seed; every window's latents and frames must agree to
float32 precision, in both modes, with 1 and 5 conditioning frames, guidance with the blanked
face, and the relighting LoRA. See official_generate_oracle.py for what is shared and why."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import official_generate_oracle as oracle
import pytest
import torch

H, W, SEGMENT, STEPS, SEED = 32, 48, 9, 4, 7
PROMPT = "a person dancing"
LATENT_TOL = 1e-4  # max abs difference, latents in the model's (normalised) units
FRAME_TOL = 1e-4  # decoded frames in [-1, 1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    model = oracle.tiny_official_model(seed=0)
    root = tmp_path_factory.mktemp("official_generate")
    pipe = oracle.tiny_pipeline(root / "model", oracle.diffusers_transformer(model))
    pipe.set_progress_bar_config(disable=True)
    lora = oracle.write_relighting_lora(model, root / "lora")
    from backend.model.lora_adapters import TransformerSetup

    return SimpleNamespace(model=model, pipe=pipe, lora=lora, lora_setup=TransformerSetup())


@contextlib.contextmanager
def decode_log(vae):
    """What reaches the VAE decoder (latents) and what it returns (frames), call by call: both
    sides decode through the same VAE, one call per window."""
    real = vae.decode
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def decode(z, *args, **kwargs):
        out = real(z, *args, **kwargs)
        calls.append((z.detach().clone(), out[0].detach().clone()))
        return out

    vae.decode = decode
    try:
        yield calls
    finally:
        del vae.decode


def make_clip(n: int, replace: bool, seed: int) -> oracle.Clip:
    r = np.random.default_rng(seed)
    clip = oracle.Clip(
        pose=r.integers(0, 256, (n, H, W, 3), dtype=np.uint8),
        face=r.integers(0, 256, (n, oracle.FACE, oracle.FACE, 3), dtype=np.uint8),
        reference=r.integers(0, 256, (H, W, 3), dtype=np.uint8),
    )
    if replace:
        clip.background = r.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
        clip.mask = np.zeros((n, H, W), np.uint8)
        for i in range(n):  # a moving box to regenerate, not on the latent grid
            y, x = r.integers(0, H // 2), r.integers(0, W // 2)
            clip.mask[i, y : y + H // 2 + 3, x : x + W // 2 + 5] = 255
    return clip


def run_official(pipe, model, clip, mode, overlap, guidance, lora=None, solver="dpm++"):
    wan = oracle.official_generator(pipe, model, clip, lora_folder=lora.parent if lora else None)
    with oracle.float32_generate(), decode_log(pipe.vae) as calls:
        video = wan.generate(
            "unused: the clip is handed over directly",
            replace_flag=mode == "replace",
            clip_len=SEGMENT,
            refert_num=overlap,
            shift=5.0,
            sample_solver=solver,
            sampling_steps=STEPS,
            guide_scale=guidance,
            input_prompt=PROMPT,
            n_prompt="",
            seed=SEED,
            offload_model=False,
        )
    frames = ((video.float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return calls, frames


def run_project(setup, clip, mode, overlap, guidance, folder: Path, lora=None, sampler="dpm++"):
    from PIL import Image

    from backend.generation.window_loop import WindowInputs, assemble, generate_windows
    from backend.generation.window_store import WindowStore
    from backend.model.lora_adapters import LoraSpec, set_up_transformer

    pipe = setup.pipe
    # The engine's own LoRA set-up (and, without a LoRA, its removal of the last job's).
    set_up_transformer(
        pipe.transformer, setup.lora_setup, "sdpa", [LoraSpec(str(lora), 1.0)] if lora else [], pipeline=pipe
    )
    images = [Image.fromarray(x) for x in clip.pose]
    inp = WindowInputs(
        image=Image.fromarray(clip.reference),
        pose=images,
        face=[Image.fromarray(x) for x in clip.face],
        background=[Image.fromarray(x) for x in clip.background] if mode == "replace" else None,
        mask=[Image.fromarray(x, "L") for x in clip.mask] if mode == "replace" else None,
        prompt=PROMPT,
        width=W,
        height=H,
        segment=SEGMENT,
        overlap=overlap,
        steps=STEPS,
        mode=mode,
        guidance_scale=guidance,
        seed=SEED,
        colour_match=False,  # the official loop has none
        sampler=sampler,
    )
    store = WindowStore(folder, {"test": 1})
    with torch.inference_mode(), decode_log(pipe.vae) as calls:
        windows, _ = generate_windows(pipe, inp, store, lambda *a: None)
    return calls, np.stack(assemble(store, windows, len(images)))


def _normalised(vae, z: torch.Tensor) -> torch.Tensor:
    zd = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, zd, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, zd, 1, 1, 1)
    return (z - mean) / std


def compare(pipe, official, project) -> tuple[list[float], list[float], int]:
    (a, fa), (b, fb) = official, project
    assert len(a) == len(b), f"official generated {len(a)} windows, the backend {len(b)}"
    assert fa.shape == fb.shape, (fa.shape, fb.shape)
    lat = [
        float((_normalised(pipe.vae, x[0]) - _normalised(pipe.vae, y[0])).abs().max())
        for x, y in zip(a, b, strict=True)
    ]
    frames = [float((x[1] - y[1]).abs().max()) for x, y in zip(a, b, strict=True)]
    return lat, frames, int(np.abs(fa.astype(int) - fb.astype(int)).max())


def base_transformer(setup):
    """The pipeline's transformer without a LoRA (a relighting case may have left one)."""
    from backend.model.lora_adapters import set_up_transformer

    set_up_transformer(setup.pipe.transformer, setup.lora_setup, "sdpa", [], pipeline=setup.pipe)
    return setup.pipe.transformer


def test_every_official_weight_has_its_diffusers_place(setup):
    official = setup.model.state_dict()
    state, left = oracle.to_diffusers_state(official)
    assert left == []
    # A LoRA, once loaded, leaves its base Linears wrapped (".base_layer"), adding nothing.
    ours = {k.replace(".base_layer", ""): v for k, v in base_transformer(setup).state_dict().items()}
    fixed = {k for k in state if k.endswith("blur_kernel")}  # computed buffers, checked equal on load
    # Every diffusers weight came from the official model, value for value, and nothing is left.
    assert set(ours) == set(state) - fixed
    assert all(torch.equal(ours[k], v) for k, v in state.items() if k in ours)
    # One name each, but the face adapter's fused key/value Linear (weight, bias) became two.
    assert len(state) == len(official) + 2


def test_one_transformer_pass_matches_the_official_model(setup):
    """The mapped transformer alone, one denoising pass: narrows a loop mismatch to the model or
    the loop."""
    model, transformer = setup.model, base_transformer(setup)
    g = torch.Generator().manual_seed(0)
    lat_t, h, w = 3, H // 8, W // 8
    x = torch.randn(16, lat_t + 1, h, w, generator=g)
    y = torch.randn(20, lat_t + 1, h, w, generator=g)
    pose = torch.randn(16, lat_t, h, w, generator=g)
    face = torch.rand(1, 3, SEGMENT, oracle.FACE, oracle.FACE, generator=g) * 2 - 1
    context = torch.randn(512, oracle.TEXT_DIM, generator=g)
    context[20:] = 0
    clip = torch.randn(1, oracle.CLIP_TOKENS, oracle.CLIP_DIM, generator=g)
    t = torch.tensor([937])
    with torch.no_grad():
        theirs = model(
            [x],
            t=t,
            clip_fea=clip,
            context=[context],
            seq_len=(lat_t + 1) * h * w // 4,
            y=[y],
            pose_latents=[pose],
            face_pixel_values=face,
        )[0]
        ours = transformer(
            hidden_states=torch.cat([x, y])[None],
            timestep=t,
            encoder_hidden_states=context[None],
            encoder_hidden_states_image=clip,
            pose_hidden_states=pose[None],
            face_pixel_values=face,
            return_dict=False,
        )[0][0]
    assert float(theirs.abs().max()) > 0.1  # a real output, not the official init's zero head
    assert float((theirs - ours).abs().max()) <= LATENT_TOL


@pytest.mark.parametrize("sampler", ["dpm++", "unipc"])
@pytest.mark.parametrize("steps", [4, 20])
def test_samplers_take_the_official_steps(sampler, steps):
    """The project's samplers against the official schedulers as generate sets them up, on a
    stand-in flow field; 20 steps is the default run, where the multistep updates dominate."""
    from backend.generation.sampler import make_sampler

    fm, animate = oracle.official().fm_solvers, oracle.official().animate
    if sampler == "dpm++":
        official = fm.FlowDPMSolverMultistepScheduler(
            num_train_timesteps=1000, shift=1, use_dynamic_shifting=False
        )
        timesteps, _ = fm.retrieve_timesteps(
            official, device="cpu", sigmas=fm.get_sampling_sigmas(steps, 5.0)
        )
    else:
        official = animate.FlowUniPCMultistepScheduler(
            num_train_timesteps=1000, shift=1, use_dynamic_shifting=False
        )
        official.set_timesteps(steps, device="cpu", shift=5.0)
        timesteps = official.timesteps
    ours = make_sampler(sampler, steps, "cpu", 5.0)
    # The model is told the same integer timesteps.
    assert torch.equal(ours.timesteps, timesteps)
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 3, 4, generator=g)
    a = b = torch.randn(2, 3, 4, generator=g)
    for t in timesteps:
        # A field that depends on where the sample is and when, so each step's input matters.
        field_a, field_b = (torch.tanh(v) - target + t / 1000 for v in (a, b))
        a = official.step(field_a, t, a, return_dict=False)[0]
        b = ours.step(field_b, t, b)
    assert float((a - b).abs().max()) <= 1e-5


# (mode, conditioning frames, clip frames, guidance, relighting, sampler): 1 to 3 windows of 9
# frames, the last one padded by the bounce through the clip.
CASES = [
    ("animate", 1, 13, 1.0, False, "dpm++"),  # 2 windows
    ("animate", 5, 12, 2.0, False, "dpm++"),  # 2 windows, guidance with the blanked face
    ("replace", 1, 19, 1.0, False, "dpm++"),  # 3 windows
    ("replace", 5, 12, 1.5, True, "dpm++"),  # 2 windows, guidance, relighting LoRA
    ("animate", 1, 13, 2.0, False, "unipc"),  # the official generate's other solver
    ("replace", 1, 6, 1.0, False, "dpm++"),  # a clip shorter than one window
]


@pytest.mark.parametrize(("mode", "overlap", "n", "guidance", "relight", "sampler"), CASES)
def test_windows_match_the_official_generate(setup, tmp_path, mode, overlap, n, guidance, relight, sampler):
    pipe = setup.pipe
    clip = make_clip(n, mode == "replace", seed=n + overlap)
    lora_file = setup.lora if relight else None
    official = run_official(pipe, setup.model, clip, mode, overlap, guidance, lora=lora_file, solver=sampler)
    project = run_project(
        setup, clip, mode, overlap, guidance, tmp_path / "w", lora=lora_file, sampler=sampler
    )
    lat, frames, levels = compare(pipe, official, project)
    expected_windows = -(-(n - overlap) // (SEGMENT - overlap))
    assert len(lat) == expected_windows
    assert max(lat) <= LATENT_TOL, f"latent differences per window: {lat}"
    assert max(frames) <= FRAME_TOL, f"frame differences per window: {frames}"
    # What a user sees: the clip's frames, 8-bit, the same up to a rounding step.
    assert project[1].shape == (n, H, W, 3) and levels <= 1
    if relight:
        # The LoRA has to matter here, or its agreement would prove nothing.
        plain = run_project(setup, clip, mode, overlap, guidance, tmp_path / "plain")
        assert max(compare(pipe, official, plain)[0]) > 100 * LATENT_TOL


def test_a_job_runs_the_chosen_sampler_and_says_so(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    """Over the real HTTP API: the official generate's sampler by default, UniPC on request, each
    named in job.json; an unknown one refused before anything runs."""
    from backend_proc import BackendProc, result_frames, result_json

    settings = {"width": 64, "height": 48, "steps": 3, "segment_frames": 9, "overlap": 1, "clip_frames": 9}
    body = {"character_path": str(astronaut_png), "clip_path": str(carphone_clip)}
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        jobs = {}
        for sampler in (None, "unipc"):
            extra = {"sampler": sampler} if sampler else {}
            result = b.run_job({**body, "settings": {**settings, **extra}})
            jobs[sampler] = result_frames(result), result_json(result)
        (official, job), (unipc, job_unipc) = jobs[None], jobs["unipc"]
        assert job["sampler"] == job["settings"]["sampler"] == "dpm++"
        assert job_unipc["sampler"] == "unipc"
        assert np.abs(official.astype(int) - unipc.astype(int)).max() > 5
        r = b.post("/v1/jobs", json={**body, "settings": {**settings, "sampler": "euler"}})
        assert r.status_code == 400 and "sampler" in r.json()["detail"]
    finally:
        b.stop()
