"""``python -m backend download``: fetch the Diffusers-format weights with
huggingface_hub (resumable: an interrupted download continues where it stopped)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..model.model_store import HF_REPO_ID, SOURCE_FILE

# The official preprocessing models and the relighting LoRA live in the original (non-Diffusers)
# repository; only these files of it are fetched (about 3 GB, not its 80 GB of weights).
PREPROCESS_REPO_ID = "Wan-AI/Wan2.2-Animate-14B"
PREPROCESS_PATTERNS = ["process_checkpoint/det/*", "process_checkpoint/pose2d/*", "relighting_lora.ckpt"]

APPROX_BYTES = 82 * 10**9


def ensure_free_space(target: Path, total_bytes: int) -> int:
    """Bytes still to fetch; refuses before downloading when they would not fit."""
    have = sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file())
    need = max(total_bytes - have, 0)
    free = shutil.disk_usage(target).free
    if free < need * 1.05:
        raise SystemExit(
            f"Not enough free disk space in {target}: {need / 1e9:.1f} GB still to download, "
            f"{free / 1e9:.1f} GB free. Free space or choose another folder with --dir."
        )
    return need


def download_weights(target: Path, repo_id: str = HF_REPO_ID, revision: str | None = None) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    total = sum((s.size or 0) for s in info.siblings or []) or APPROX_BYTES
    need = ensure_free_space(target, total)
    print(
        f"downloading {repo_id}@{info.sha} ({total / 1e9:.1f} GB, {need / 1e9:.1f} GB to go) to {target}",
        flush=True,
    )
    # huggingface_hub shows a progress bar per file and resumes partial files itself.
    snapshot_download(repo_id, revision=info.sha, local_dir=target)
    (target / SOURCE_FILE).write_text(json.dumps({"repo_id": repo_id, "revision": info.sha}, indent=2))
    download_preprocessing(target)
    return target


def download_preprocessing(target: Path, repo_id: str = PREPROCESS_REPO_ID) -> Path:
    """YOLOv10m and ViTPose-H (ONNX) into ``target/process_checkpoint``, and the relighting LoRA."""
    from huggingface_hub import snapshot_download

    print(f"downloading the preprocessing models and relighting LoRA from {repo_id}", flush=True)
    snapshot_download(repo_id, allow_patterns=PREPROCESS_PATTERNS, local_dir=Path(target))
    return Path(target)
