"""Replace mode's performer masks from SAM2 video segmentation, prompted as the official
Wan-Animate preprocessing prompts it, then shaped by the official rule.

The official rule, restated (Wan2.2 ``process_pipepline.py``, ``get_mask`` and ``utils.py``):

- the clip's model frames are segmented in chunks of 400, each chunk a fresh SAM2 session;
- in a chunk of n frames, key frames every ``n // 4`` frames from frame 0 (one key frame, frame
  0, when n <= 4); on each, positive clicks on the performer's nose, neck, shoulders, hips and
  ankles; one tracked object, propagated through the chunk; mask = logits > 0;
- the mask is then shaped by the official rule (mask_shape.py).

Points below the keypoint confidence threshold are left out (the official passes every body
point, seen or not); a key frame with none is skipped.

Memory stays flat however long the clip: the prepared frames of a chunk wait in a file, not in
memory, and are read back one at a time as SAM2 asks for them; the session forgets each
frame's outputs once no later frame can read them (SAM2 looks back ``num_maskmem`` frames for
memories and ``max_object_pointers_in_encoder`` for object pointers); the masks go to disk as
they are made. Frames are prepared here (resize and normalise) rather than by
``Sam2VideoProcessor``, whose image and video processors need torchvision."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .clip_reading import ClipInfo, iter_frames_rgb
from .frame_folder import FrameFolder
from .mask_shape import official_shape
from .pose_format import CONFIDENCE_THRESHOLD, wholebody_to_body20

SAM2_FOLDER = "sam2"  # <model_dir>/sam2: SAM2.1 hiera-large in transformers' format
SAM2_REPO_ID = "facebook/sam2.1-hiera-large"
CHUNK_FRAMES = 400
KEY_FRAMES_PER_CHUNK = 4
# Body-20 (OpenPose order) indices: nose, neck, right and left shoulder, right and left hip,
# right and left ankle.
PROMPT_POINTS = (0, 1, 2, 5, 8, 11, 10, 13)
OBJECT_ID = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Progress = Callable[[int, int, str], None]


def sam2_folder(model_dir: Path | None) -> Path | None:
    """The SAM2 weights in the model folder, when they are there (config and safetensors)."""
    if model_dir is None:
        return None
    folder = Path(model_dir) / SAM2_FOLDER
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    return None


def key_frames(n: int) -> list[int]:
    """The official key frames of a chunk of ``n`` frames (may be five when n // 4 does not
    divide n, as the official ``range`` gives)."""
    if n <= 0:
        return []
    count = KEY_FRAMES_PER_CHUNK if n > KEY_FRAMES_PER_CHUNK else 1
    return list(range(0, n, n // count))


def prompt_points(kps: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The performer's positive clicks in clip pixels, (N, 2), or None when none is seen."""
    body = wholebody_to_body20(kps)[list(PROMPT_POINTS)]
    seen = body[body[:, 2] >= CONFIDENCE_THRESHOLD, :2]
    inside = (seen[:, 0] >= 0) & (seen[:, 0] < width) & (seen[:, 1] >= 0) & (seen[:, 1] < height)
    seen = seen[inside]
    return seen if len(seen) else None


class _FrameStore:
    """A chunk's prepared frames (uint8, size x size x 3) in a file, read back one at a time."""

    def __init__(self, folder: Path, size: int) -> None:
        self.size = size
        self._bytes = size * size * 3
        self.path = Path(folder) / "sam2_frames.raw"
        self._file = open(self.path, "w+b")  # noqa: SIM115 - closed by close()
        self.count = 0

    def reset(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self.count = 0

    def append(self, frame: np.ndarray) -> None:
        self._file.seek(self.count * self._bytes)
        self._file.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        self.count += 1

    def read(self, i: int) -> np.ndarray:
        self._file.seek(i * self._bytes)
        data = self._file.read(self._bytes)
        if len(data) != self._bytes:
            raise OSError(f"{self.path}: frame {i} could not be read back (is the disk full?)")
        return np.frombuffer(data, np.uint8).reshape(self.size, self.size, 3)

    def close(self) -> None:
        self._file.close()


class _LazyFrames:
    """What the inference session keeps as its video: frames normalised when SAM2 reads them."""

    def __init__(self, store: _FrameStore, mean, std) -> None:
        import torch

        self._store = store
        self._mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self._std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return self._store.count

    def __getitem__(self, i: int):
        import torch

        img = torch.from_numpy(self._store.read(int(i)).copy()).permute(2, 0, 1).float() / 255.0
        return (img - self._mean) / self._std


class Sam2Segmenter:
    """SAM2 video masks for a clip's model frames, made in one pass before the masks are shaped
    (``segment_clip``), then handed out frame by frame (``mask``)."""

    name = "sam2"

    def __init__(self, folder: Path, device: str | None = None) -> None:
        import torch
        from transformers import Sam2VideoModel

        self.folder = Path(folder)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model = Sam2VideoModel.from_pretrained(self.folder)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise RuntimeError(
                f"SAM2 in {self.folder} could not be loaded ({exc}). Run `python -m backend download` "
                "again to complete it, or remove that folder to make the masks with the embedded "
                "segmenter instead."
            ) from exc
        self.model = model.to(self.device).eval()
        size = self.model.config.image_size
        self.size = int(size if isinstance(size, int) else size[0])
        self.mean, self.std = _normalisation(self.folder)
        self._masks: Sequence[np.ndarray] = []
        self._work: Path | None = None

    def segment_clip(
        self,
        info: ClipInfo,
        sources: list[int],
        kps: list[np.ndarray],
        work_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Segments every model frame; the binary masks (clip size, 0/255) go to ``work_dir``
        as they are made (kept in memory without one)."""
        self._work = Path(tempfile.mkdtemp(prefix="sam2-", dir=work_dir))
        masks = FrameFolder(self._work / "masks", "sam2") if work_dir is not None else []
        store = _FrameStore(self._work, self.size)
        total = len(sources)
        try:
            chunk_start = 0
            for n, (_idx, frame) in enumerate(iter_frames_rgb(info, sources)):
                store.append(cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_LINEAR))
                if store.count == CHUNK_FRAMES or n == total - 1:
                    for mask in self._segment_chunk(store, kps[chunk_start : n + 1], info.width, info.height):
                        masks.append(mask)
                        if progress:
                            progress(len(masks), total, "masks (SAM2)")
                    chunk_start = n + 1
                    store.reset()
        finally:
            store.close()
        if len(masks) != total:
            raise RuntimeError(f"SAM2 made {len(masks)} masks for {total} frames")
        self._masks = masks

    def _segment_chunk(self, store: _FrameStore, kps: list[np.ndarray], width: int, height: int):
        import torch
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        n = store.count
        session = Sam2VideoInferenceSession(
            video=None,
            video_height=height,
            video_width=width,
            inference_device=self.device,
            inference_state_device=self.device,
            video_storage_device="cpu",
            dtype=torch.float32,
        )
        session.processed_frames = _LazyFrames(store, self.mean, self.std)  # type: ignore[assignment]
        scale = np.array([self.size / width, self.size / height])
        prompted = False
        with torch.inference_mode():
            for fi in key_frames(n):
                pts = prompt_points(kps[fi], width, height)
                if pts is None:
                    continue
                coords = torch.tensor(pts * scale, dtype=torch.float32)[None, None]
                labels = torch.ones((1, 1, len(pts)), dtype=torch.int32)
                obj_idx = session.obj_id_to_idx(OBJECT_ID)
                session.add_point_inputs(obj_idx, fi, {"point_coords": coords, "point_labels": labels})
                session.obj_with_new_inputs = [OBJECT_ID]
                self.model(inference_session=session, frame_idx=fi)
                prompted = True
            if not prompted:  # the performer is seen on no key frame: nothing to regenerate
                for _ in range(n):
                    yield np.zeros((height, width), np.uint8)
                return
            # Older outputs than this are never read again while propagating forward.
            keep = max(self.model.config.num_maskmem, self.model.config.max_object_pointers_in_encoder)
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=0):
                logits = out.pred_masks[0, 0].float().cpu().numpy()
                up = cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)
                yield ((up > 0).astype(np.uint8) * 255)
                for per_obj in session.output_dict_per_obj.values():
                    per_obj["non_cond_frame_outputs"].pop(out.frame_idx - keep, None)

    def mask(self, rgb: np.ndarray, index: int = 0) -> np.ndarray:
        """Performer probability (clip size, float32 in {0, 1}) of model frame ``index``."""
        return self._masks[index].astype(np.float32) / 255.0

    def shape(self, prob: np.ndarray) -> np.ndarray:
        return official_shape(prob >= 0.5)

    def close(self) -> None:
        self._masks = []
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None
        self.model = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _normalisation(folder: Path) -> tuple[tuple, tuple]:
    """The checkpoint's own mean and std when it ships a processor config, else ImageNet's."""
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            if "image_mean" in cfg and "image_std" in cfg:
                return tuple(cfg["image_mean"]), tuple(cfg["image_std"])
    return IMAGENET_MEAN, IMAGENET_STD
