"""The official Wan2.2 code as the tests' reference: the pip package ``wan22`` (import path ``wan``),
installed in the test environment by tools/dev.py without its declared dependencies.

The product never imports it; tests call its functions on the inputs they give the backend's and
compare what comes out. Parts of it import, at the top of a module, packages that cannot run here
or have nothing to do with the functions compared (decord, sam2, moviepy, loguru, diffusers'
FluxKontextPipeline, the ONNX pose model). ``standins`` puts empty modules under those names in
``sys.modules`` for the duration of an import only and restores ``sys.modules`` afterwards, so the
rest of the test session keeps the real packages. Nothing else is replaced: every function a test
compares with is the official one, run as it is installed.

- ``preprocess()``: the animate preprocessing (``wan/modules/animate/preprocess``), whose modules
  import each other by bare name (``from utils import ...``); they are loaded from that folder and
  kept under a private prefix, so that ``utils`` and the like never shadow another module.
- ``import_wan(name, standins)``: any other ``wan`` module, optionally without running the
  packages' ``__init__`` files (which import the whole model stack).
- ``official_function(path, name, cls)``: one function or method compiled from an installed
  file, unchanged, without importing the module around it (``wan/animate.py``'s
  ``WanAnimate.padding_resize``, which fits the reference image, needs the whole model stack
  to import).
- ``run_official_preprocess(...)``: the official ``ProcessPipeline.__call__`` (animate or replace)
  driven with given clip frames, keypoints and masks in place of the decoder, the pose model and
  SAM2; returns the frames it would have written to src_pose/src_face/src_bg/src_mask.mp4."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

WAN_DIST, WAN_VERSION = "wan22", "2.2.11"
PREFIX = "wan_official"


def wan_root() -> Path:
    """The installed ``wan`` package's folder (found without importing it)."""
    spec = importlib.util.find_spec("wan")
    assert spec is not None and spec.submodule_search_locations, (
        f"the official Wan2.2 code ({WAN_DIST}=={WAN_VERSION}) is part of the test environment: "
        "python3 tools/dev.py setup installs it"
    )
    version = importlib.metadata.version(WAN_DIST)
    assert version == WAN_VERSION, f"{WAN_DIST} {version} installed; the tests compare with {WAN_VERSION}"
    return Path(next(iter(spec.submodule_search_locations)))


def stub(name: str, **attrs) -> types.ModuleType:
    """An empty module named ``name`` holding ``attrs``."""
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


@contextlib.contextmanager
def standins(mods: dict[str, types.ModuleType]) -> Iterator[None]:
    """``mods`` in sys.modules while the block runs (parents of dotted names made as needed); then
    sys.modules as it was, apart from the modules the block imported, which the caller keeps."""
    saved = {name: sys.modules.get(name) for name in mods}
    for name, mod in mods.items():
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent and parent in mods:
            setattr(mods[parent], child, mod)
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def load_flat(folder: Path, names: list[str], mods: dict[str, types.ModuleType], prefix: str) -> dict:
    """Import the modules ``names`` of ``folder``, which import each other by bare name, with
    ``mods`` stood in; afterwards they live in sys.modules as ``prefix.<name>`` only."""
    bare = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules.pop(n, None)
    sys.path.insert(0, str(folder))
    loaded = {}
    try:
        with standins(mods):
            for n in names:
                loaded[n] = importlib.import_module(n)
    finally:
        sys.path.remove(str(folder))
        for n in names:
            sys.modules.pop(n, None)
            if bare[n] is not None:
                sys.modules[n] = bare[n]
    for n, mod in loaded.items():
        sys.modules[f"{prefix}.{n}"] = mod
    return loaded


def _bare_packages(name: str) -> dict[str, types.ModuleType]:
    """Package modules for every parent of ``name`` whose __init__ is not to run."""
    root = wan_root().parent
    out = {}
    parts = name.split(".")
    for i in range(1, len(parts)):
        pkg = ".".join(parts[:i])
        if pkg in sys.modules:
            continue
        mod = types.ModuleType(pkg)
        mod.__path__ = [str(root.joinpath(*parts[:i]))]
        out[pkg] = mod
    return out


def import_wan(name: str, mods: dict[str, types.ModuleType] | None = None, run_inits: bool = False):
    """The official module ``name`` (``wan.xxx``) imported with ``mods`` stood in. Without
    ``run_inits`` the packages above it are bare (their __init__ files, which import the whole
    model stack, do not run); they stay registered so that later imports find the same modules."""
    wan_root()
    packages = {} if run_inits else _bare_packages(name)
    sys.modules.update(packages)
    with standins(mods or {}):
        return importlib.import_module(name)


def official_function(path: str, name: str, cls: str | None = None, namespace: dict | None = None):
    """The function ``name`` (a method of class ``cls``: as a plain function, ``self`` first) of
    the installed file ``path`` (relative to the ``wan`` package), compiled from its source as it
    is, with ``namespace`` as its globals (the modules it uses, e.g. ``{"cv2": cv2, "np": np}``)."""
    file = wan_root() / path
    body = ast.parse(file.read_text()).body
    if cls is not None:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    node = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
    ns = dict(namespace or {})
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(file), "exec"), ns)
    return ns[name]


# --- The animate preprocessing ---------------------------------------------------------------

PREPROCESS_MODULES = ["utils", "pose2d_utils", "human_visualization", "retarget_pose", "process_pipepline"]


class _Feed:
    """What the stand-ins for the decoder, the pose model and SAM2 give the official pipeline."""

    frames: list[np.ndarray] = []
    fps: float = 30.0
    detect: Callable | None = None
    mask: Callable | None = None
    batch: list[int] | None = None
    written: dict[str, list[np.ndarray]] = {}
    prompts: list = []


FEED = _Feed()


class _Batch:
    def __init__(self, arr: np.ndarray) -> None:
        self._arr = arr

    def asnumpy(self) -> np.ndarray:
        return self._arr


class VideoReader:
    """decord's reader over FEED.frames (the clip's frames as decoded), at FEED.fps."""

    def __init__(self, path, *args, **kwargs) -> None:
        self._frames = FEED.frames

    def __len__(self) -> int:
        return len(self._frames)

    def get_avg_fps(self) -> float:
        return FEED.fps

    def get_frame_timestamp(self, idx: int) -> np.ndarray:
        n = len(self._frames) + idx if idx < 0 else idx
        return np.array([n / FEED.fps, (n + 1) / FEED.fps])

    def get_batch(self, idxs) -> _Batch:
        FEED.batch = list(idxs)
        return _Batch(np.stack([self._frames[i] for i in idxs]))


class Pose2d:
    """The pose model's place: FEED.detect(images, sources) gives (N, 133, 3) whole-body keypoints
    in the images' pixels (``sources``: the clip frame behind each image; None for the character
    image, which the animate branch reads before the clip); the metas are then made by the
    official ``load_pose_metas_from_kp2ds_seq``, as the real ``Pose2d.__call__`` makes them."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, images, **kwargs):
        h, w = images[0].shape[:2]
        sources = None if FEED.batch is None else FEED.batch[: len(images)]
        kp2ds = np.asarray(FEED.detect(list(images), sources), dtype=np.float64)
        return preprocess().pose2d_utils.load_pose_metas_from_kp2ds_seq(kp2ds, width=w, height=h)


class _Logits:
    def __init__(self, mask: np.ndarray) -> None:
        self._m = mask

    def __getitem__(self, i):
        return _Logits(self._m[i])

    def __gt__(self, v):
        return _Logits(self._m > v)

    def cpu(self):
        return self

    def numpy(self) -> np.ndarray:
        return np.asarray(self._m)


class _Predictor:
    """SAM2's video predictor: FEED.mask(model_frame, image) gives the performer's mask (H, W) of
    each frame it is shown; the prompts the pipeline gives are kept in FEED.prompts."""

    def __init__(self) -> None:
        self._start = 0

    def init_state_v2(self, frames):
        state = {"frames": frames, "start": self._start}
        self._start += len(frames)
        return state

    def reset_state(self, state) -> None:
        pass

    def add_new_points(self, inference_state, frame_idx, obj_id, points, labels):
        FEED.prompts.append((inference_state["start"] + frame_idx, np.array(points), np.array(labels)))
        return None, [obj_id], None

    def propagate_in_video(self, state):
        for i, frame in enumerate(state["frames"]):
            m = np.asarray(FEED.mask(state["start"] + i, frame), dtype=np.float32)
            yield i, [1], _Logits(np.where(m > 0, 1.0, -1.0)[None, None])


class _Clip:
    def __init__(self, frames, fps=None) -> None:
        self.frames = [np.asarray(f) for f in frames]

    def write_videofile(self, path, *args, **kwargs) -> None:
        FEED.written[Path(path).stem] = self.frames


def _logger() -> types.SimpleNamespace:
    quiet = lambda *a, **k: None  # noqa: E731
    return types.SimpleNamespace(info=quiet, warning=quiet, debug=quiet, error=quiet)


def preprocess_standins() -> dict[str, types.ModuleType]:
    sam2 = {
        n: stub(n) for n in ("sam2", "sam2.modeling", "sam2.modeling.sam", "sam2.modeling.sam.transformer")
    }
    editor = stub("moviepy.editor", ImageSequenceClip=_Clip)
    return {
        **sam2,
        "decord": stub("decord", VideoReader=VideoReader),
        "pose2d": stub("pose2d", Pose2d=Pose2d),
        "sam_utils": stub("sam_utils", build_sam2_video_predictor=lambda *a, **k: _Predictor()),
        "moviepy": stub("moviepy", editor=editor, ImageSequenceClip=_Clip),
        "moviepy.editor": editor,
        "loguru": stub("loguru", logger=_logger()),
        "diffusers": stub("diffusers", FluxKontextPipeline=None),
    }


@functools.cache
def preprocess() -> types.SimpleNamespace:
    """The official preprocessing modules: utils, pose2d_utils, human_visualization, retarget_pose,
    process_pipepline (sic)."""
    folder = wan_root() / "modules" / "animate" / "preprocess"
    loaded = load_flat(folder, PREPROCESS_MODULES, preprocess_standins(), f"{PREFIX}.preprocess")
    return types.SimpleNamespace(**loaded)


def run_official_preprocess(
    frames: list[np.ndarray],
    fps: float,
    refer_path: Path,
    out_dir: Path,
    detect: Callable,
    mask: Callable | None = None,
    replace: bool = False,
    retarget: bool = False,
    area: tuple[int, int] = (1280, 720),
) -> dict[str, list[np.ndarray]]:
    """The official ``ProcessPipeline.__call__`` on a clip whose decoded frames are ``frames``
    (RGB) at ``fps`` and the character image file ``refer_path``, its command line's defaults
    otherwise (30 fps, iterations 3, k 7, a 1 x 1 grid). ``detect``/``mask``: see Pose2d and
    _Predictor. Returns the frames it writes, by file stem: src_pose, src_face (and src_bg,
    src_mask in replace mode; src_mask as written, 0/255 in three channels), and under
    "indices" the clip frames it read (get_frame_indices)."""
    pp = preprocess().process_pipepline
    FEED.frames, FEED.fps, FEED.detect, FEED.mask = list(frames), fps, detect, mask
    FEED.batch, FEED.written, FEED.prompts = None, {}, []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = pp.ProcessPipeline("det", "pose2d", "sam2" if replace else None, None)
    with contextlib.redirect_stdout(None):
        pipe(
            "clip.mp4",
            str(refer_path),
            str(out_dir),
            resolution_area=list(area),
            retarget_flag=retarget,
            replace_flag=replace,
        )
    return {**FEED.written, "indices": list(FEED.batch or [])}
