"""``python -m backend download``: fetch the Diffusers-format weights and the preprocessing
models from the model hub (HF_ENDPOINT, token and proxy as huggingface_hub reads them),
resumable: a stopped download continues inside the file where it stopped."""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..model.model_folder import SOURCE_FILE
from ..model.model_store import HF_REPO_ID

# The official preprocessing models and the relighting LoRA live in the original (non-Diffusers)
# repository; only these files of it are fetched (about 3 GB, not its 80 GB of weights).
PREPROCESS_REPO_ID = "Wan-AI/Wan2.2-Animate-14B"
PREPROCESS_PATTERNS = ["process_checkpoint/det/*", "process_checkpoint/pose2d/*", "relighting_lora.ckpt"]

# SAM2.1 hiera-large in transformers' format, for replace mode's masks as the official
# preprocessing makes them (backend/preprocess/segment_sam2.py reads <model>/sam2). The repository
# also holds the original .pt checkpoint, which is not fetched.
SAM2_REPO_ID = "facebook/sam2.1-hiera-large"
SAM2_PATTERNS = ["*.json", "*.safetensors"]
SAM2_FOLDER = "sam2"

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


# Written into the model folder before the first byte and completed after the last: every file
# the download fetches with its size and (for LFS files) sha256, so the add-on's Check can say
# exactly what is missing without reaching the hub. Read by wan_animate_blender/core/weights.py.
FILES_RECORD = "wan_animate_files.json"
ENGINE = "wan2.2-animate"
PROGRESS_SECONDS = 1.0
PARTIAL_DIR = ".download"  # partial files, resumed by the next run
CHUNK_BYTES = 1 << 20
PARALLEL_FILES = 4


def repo_files(repo_id: str, revision: str | None, patterns: list[str] | None) -> tuple[str, dict[str, dict]]:
    """(commit, {path: {size, sha256, repo}}) of the files a download of ``patterns`` fetches."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = {}
    for name in filter_repo_objects(list(siblings), allow_patterns=patterns):
        s = siblings[name]
        files[name] = {"size": s.size, "sha256": s.lfs.sha256 if s.lfs else None, "repo": repo_id}
    assert info.sha is not None
    return info.sha, files


def write_record(
    target: Path, repos: dict[str, str], files: dict[str, dict], complete: bool, engine: str = ENGINE
) -> None:
    record = {"engine": engine, "complete": complete, "repos": repos, "files": files}
    partial = target / (FILES_RECORD + ".part")
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    partial.replace(target / FILES_RECORD)


def bytes_on_disk(target: Path, files: dict[str, dict]) -> int:
    """Finished files plus the partial ones, which grow in place and are resumed."""
    done = sum(
        min((target / n).stat().st_size, f["size"] or 0) for n, f in files.items() if (target / n).is_file()
    )
    partial = target / PARTIAL_DIR
    if partial.is_dir():
        done += sum(p.stat().st_size for p in partial.rglob("*.part") if p.is_file())
    return done


def fetch_file(repo_id: str, revision: str, name: str, size: int | None, target: Path) -> None:
    """One file into ``target/name`` through ``target/.download/name.part``, continuing a part
    left by an earlier run with an HTTP Range request. huggingface_hub 2.x writes each download to
    a process-unique temporary file and so restarts a file after the process was stopped; for
    files of 10 GB and more the add-on needs the resume across runs (Stop, a crash, a reboot)."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    final = target / name
    if final.is_file() and (size is None or final.stat().st_size == size):
        return
    part = target / PARTIAL_DIR / (name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        have = 0
    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"  # sizes and ranges count stored bytes
    if have:
        headers["Range"] = f"bytes={have}-"
    url = hf_hub_url(repo_id, name, revision=revision)
    with get_session().stream("GET", url, headers=headers, follow_redirects=True, timeout=60) as response:
        hf_raise_for_status(response)
        resumed = have and response.status_code == 206
        with open(part, "ab" if resumed else "wb") as fh:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                fh.write(chunk)
    got = part.stat().st_size
    if size is not None and got != size:
        raise OSError(f"{name}: got {got} of {size} bytes; run the download again to continue")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)


def fetch_files(repo_id: str, revision: str, files: dict[str, dict], target: Path) -> None:
    names = [n for n, f in files.items() if f["repo"] == repo_id]
    with ThreadPoolExecutor(PARALLEL_FILES) as pool:
        for future in [
            pool.submit(fetch_file, repo_id, revision, n, files[n]["size"], target) for n in names
        ]:
            future.result()


class ProgressLines:
    """Prints ``progress: DONE / TOTAL bytes`` every second from a thread while the download
    runs: the add-on's preferences read these lines for the MB and the ETA."""

    def __init__(self, target: Path, files: dict[str, dict], total: int) -> None:
        self.target, self.files, self.total = target, files, total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def print_now(self) -> None:
        try:
            done = min(bytes_on_disk(self.target, self.files), self.total)
        except OSError:  # a partial file renamed into place between listing and stat
            return
        print(f"progress: {done} / {self.total} bytes", flush=True)

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_SECONDS):
            self.print_now()

    def __enter__(self) -> ProgressLines:
        self.print_now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.print_now()


def download_weights(
    target: Path,
    repo_id: str = HF_REPO_ID,
    revision: str | None = None,
    preprocessing: bool = True,
    engine: str = ENGINE,
) -> Path:
    """The Diffusers weights and (unless ``preprocessing`` is False) the preprocessing models,
    after checking that what is still to fetch fits on the disk."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    sha, files = repo_files(repo_id, revision, None)
    repos = {repo_id: sha}
    if preprocessing:
        pre_sha, pre_files = repo_files(PREPROCESS_REPO_ID, None, PREPROCESS_PATTERNS)
        repos[PREPROCESS_REPO_ID] = pre_sha
        files.update(pre_files)
        sam_sha, sam_files = repo_files(SAM2_REPO_ID, None, SAM2_PATTERNS)
        repos[SAM2_REPO_ID] = sam_sha
        files.update({f"{SAM2_FOLDER}/{n}": f for n, f in sam_files.items()})
    total = sum(f["size"] or 0 for f in files.values()) or APPROX_BYTES
    need = ensure_free_space(target, total)
    print(
        f"downloading {repo_id}@{sha} and {len(repos) - 1} more repositories "
        f"({total / 1e9:.1f} GB, {need / 1e9:.1f} GB to go) to {target}",
        flush=True,
    )
    write_record(target, repos, files, complete=False, engine=engine)
    with ProgressLines(target, files, total):
        fetch_files(repo_id, sha, files, target)
        (target / SOURCE_FILE).write_text(json.dumps({"repo_id": repo_id, "revision": sha}, indent=2))
        if preprocessing:
            print(
                f"downloading the preprocessing models and relighting LoRA from {PREPROCESS_REPO_ID}",
                flush=True,
            )
            fetch_files(PREPROCESS_REPO_ID, repos[PREPROCESS_REPO_ID], files, target)
            print(f"downloading SAM2 (replace mode's masks) from {SAM2_REPO_ID}", flush=True)
            fetch_sam2(repos[SAM2_REPO_ID], files, target)
    write_record(target, repos, files, complete=True, engine=engine)
    shutil.rmtree(target / PARTIAL_DIR, ignore_errors=True)
    print(f"download complete: {len(files)} files in {target}", flush=True)
    return target


def download_engine(model_dir: Path, engine: str, revision: str | None = None) -> Path:
    """Wan-Animate-2's weights (base or distilled) into the model folder's sub-folder named after the
    engine, with the same free-space check, resume and recorded revision. It reads the clip's
    frames itself: no preprocessing models."""
    from ..model.animate2_layout import ENGINE_FOLDERS, HF_REPO_IDS

    target = Path(model_dir) / ENGINE_FOLDERS[engine]
    return download_weights(target, HF_REPO_IDS[engine], revision, preprocessing=False, engine=engine)


def fetch_sam2(revision: str, files: dict[str, dict], target: Path) -> None:
    """SAM2's files into ``target/sam2``: the same names as in its repository, one folder down."""
    folder = target / SAM2_FOLDER
    prefix = SAM2_FOLDER + "/"
    for name, f in files.items():
        if f["repo"] == SAM2_REPO_ID:
            fetch_file(SAM2_REPO_ID, revision, name.removeprefix(prefix), f["size"], folder)
    shutil.rmtree(folder / PARTIAL_DIR, ignore_errors=True)
