"""``python -m backend setup``: create the backend's own Python environment.

Stdlib only, runs with any Python 3.11 (never Blender's). Prints one ``[k/n] stage`` line per
step so the add-on can show progress from the log, and on failure one ``setup failed: ...``
line that says what to do.

Two ways to set up:
- ``--root DIR`` (what the add-on runs): every update goes into a new environment beside the one
  in use, is self-tested there, and only then put in use through ``DIR/current.json``; the one it
  replaces is kept for one rollback (``--rollback``). A failed update leaves the working one alone.
- ``--venv DIR``: install into DIR in place, no self-test (the developer set-up and CI).

Packages come from ``backend/requirements.lock`` with ``--require-hashes``; torch is chosen for
the machine: by uv's ``--torch-backend=auto`` where uv installs, else by pip as configured on the
machine (its index, mirror, proxy and find-links settings all apply). ``--from DIR`` installs
from a wheelhouse (``python -m backend wheelhouse``) with no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol import venv_python
from . import env_layout
from .lockfile import (
    LOCK,
    PLATFORMS,
    PYTHON_VERSION,
    REQUIREMENTS,
    TORCH_VERSION,
    lock_is_current,
    marker_holds,
    parse_lock,
)

EXTENSION_ROOT = Path(__file__).resolve().parents[2]  # the folder holding backend/
SETUP_PYTHON = (3, 11)
ORT_VERSION = "1.32.0"  # as pinned in requirements.txt
# PyPI's Windows torch wheels are CPU-only; CUDA builds come from PyTorch's own index. PyPI's
# Linux wheels are CUDA builds: a wheelhouse for a Linux machine without a GPU takes the CPU one.
WINDOWS_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
LINUX_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Space an environment takes once installed, with room for pip's downloads (measured: CPU 2.7 GB).
NEEDED_GB = {"cuda": 12.0, "cpu": 4.0, "mps": 4.0, "none": 0.5}
FAILED = "setup failed: "


def has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def machine_accel() -> str:
    if has_nvidia_gpu():
        return "cuda"
    # PyPI's macOS arm64 torch is the MPS build: Apple's GPU through unified memory.
    return "mps" if sys.platform == "darwin" and os.uname().machine == "arm64" else "cpu"


def torch_install_args(accel: str) -> list[str]:
    """pip's arguments for torch: today's choice, the machine's pip configuration applies."""
    args = [f"torch=={TORCH_VERSION}"]
    if accel == "cuda" and sys.platform == "win32":
        args += ["--index-url", WINDOWS_CUDA_INDEX]
    return args


# What a failed step's output means, first match wins: (words in pip's or uv's output, advice).
FAILURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("ProxyError", "Cannot connect to proxy", "407 Proxy Authentication", "Tunnel connection failed"),
        "a proxy is in the way: the package index could not be reached through it. Set HTTPS_PROXY "
        "(http://user:password@host:port) where Blender is started, or pip's own setting "
        "('pip config set global.proxy ...'); or set up offline from a wheelhouse "
        "('python -m backend wheelhouse DIR' on a connected machine, then 'setup --from DIR').",
    ),
    (
        ("No space left on device", "[Errno 28]", "os error 28"),
        "the disk is full. Free some space (the environment takes 3 to 10 GB) and run set-up again.",
    ),
    (
        ("DO NOT MATCH THE HASHES", "Hash mismatch", "hash mismatch"),
        "a downloaded package does not match the hash in backend/requirements.lock: the index, a mirror "
        "or a proxy served a different file. Check the machine's package index settings, or set up "
        "offline from a wheelhouse made on a machine that reaches PyPI.",
    ),
    (
        (
            "NewConnectionError",
            "Failed to establish a new connection",
            "Temporary failure in name resolution",
            "Name or service not known",
            "getaddrinfo failed",
            "Network is unreachable",
            "No route to host",
            "ConnectTimeout",
            "Read timed out",
            "dns error",
            "error sending request",
            "Could not fetch URL",
        ),
        "no internet: the package index (PyPI) could not be reached. Check the connection (a proxy is "
        "read from HTTPS_PROXY), or set up offline: 'python -m backend wheelhouse DIR' on a connected "
        "machine, copy DIR here, then 'python -m backend setup --from DIR'.",
    ),
    (
        ("No matching distribution found", "not find a version that satisfies"),
        "a pinned package has no wheel for this Python or system: set up with Python 3.11 "
        "(64-bit) on Windows, Linux or macOS.",
    ),
)


def explain_failure(lines: Sequence[str]) -> str | None:
    text = "\n".join(lines)
    for words, advice in FAILURES:
        if any(w in text for w in words):
            return advice
    return None


def run_logged(cmd: list[str], title: str, env: dict[str, str] | None = None, tail: int = 400) -> None:
    """Run ``cmd``, echoing its output; raise with advice from its output when it fails."""
    lines: list[str] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    except OSError as exc:
        raise SystemExit(f"{FAILED}{title}: {exc}") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        lines = (lines + [line.rstrip()])[-tail:]
    sys.stdout.flush()
    if proc.wait() != 0:
        advice = explain_failure(lines) or "the log above says why"
        raise SystemExit(f"{FAILED}{title}: {advice}")


def check_python() -> None:
    if sys.version_info[:2] != SETUP_PYTHON:
        have = ".".join(map(str, sys.version_info[:3]))
        raise SystemExit(
            f"{FAILED}the backend needs Python 3.11; this is Python {have} ({sys.executable}). Install "
            "Python 3.11 (Windows and macOS: python.org/downloads; Linux: the python3.11 and python3.11-venv "
            "packages, or pyenv) and set 'Python for set-up' in the add-on's preferences to it."
        )


def check_disk(folder: Path, accel: str) -> None:
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1024**3
    need = NEEDED_GB.get(accel, NEEDED_GB["cuda"])
    if free < need:
        raise SystemExit(
            f"{FAILED}not enough disk space in {probe}: {free:.1f} GB free, the environment needs about "
            f"{need:.0f} GB. Free some space, or point the extension's user folder at another disk."
        )


def pip_configured() -> bool:
    """Whether this machine tells pip where packages come from (an index, a mirror, find-links, a
    proxy): uv reads none of it, so pip installs there."""
    if any(
        k in os.environ for k in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
    ):
        return True
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    keys = ("index-url", "find-links", "no-index", "proxy", "trusted-host")
    return any(k in line for line in out.splitlines() for k in keys)


@dataclass
class Options:
    accel: str = "auto"  # auto, cpu, cuda, none (torch already there, e.g. through --inherit)
    installer: str = "auto"  # auto, uv, pip
    source: Path | None = None  # a wheelhouse: no network
    lock: Path = LOCK
    requirements: Path = REQUIREMENTS
    extra: list[str] = field(default_factory=list)
    inherit: Path | None = None  # a venv whose packages the new one sees (developers, tests)


class Steps:
    def __init__(self, titles: list[str]) -> None:
        self.titles, self.k = titles, 0

    def next(self, detail: str = "") -> tuple[int, int, str]:
        self.k += 1
        title = self.titles[self.k - 1] + detail
        return self.k, len(self.titles), title

    def say(self, detail: str = "") -> str:
        k, n, title = self.next(detail)
        print(f"[{k}/{n}] {title}", flush=True)
        return title


def _purelib(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    )


def _installer(opts: Options) -> str:
    if opts.installer != "auto":
        return opts.installer
    if opts.source is not None or pip_configured():
        return "pip"
    return "uv" if any(e.name == "uv" for e in _lock_entries(opts.lock)) else "pip"


def _lock_entries(lock: Path):
    try:
        return parse_lock(Path(lock).read_text(encoding="utf-8"))
    except OSError:
        return []


def plan_titles(target: Path, opts: Options, installer: str, selftest: bool) -> list[str]:
    titles = ["checking Python and disk space", f"creating the environment in {target}"]
    if installer == "uv":
        titles.append("installing uv")
    if opts.accel != "none":
        titles.append("installing torch")
    titles.append("installing the backend's requirements")
    if opts.extra:
        titles.append("installing extras")
    if selftest:
        titles += ["testing the new environment", "putting the new environment in use"]
    return titles


def build_env(target: Path, opts: Options, steps: Steps, installer: str) -> Path:
    target = Path(target)
    steps.say()
    check_python()
    accel = machine_accel() if opts.accel == "auto" else opts.accel
    check_disk(target, accel)
    steps.say()
    if not venv_python(target).exists():
        try:
            venv.EnvBuilder(with_pip=True, clear=False).create(target)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(
                f"{FAILED}could not create an environment with {sys.executable} ({exc}). On Debian and "
                "Ubuntu install the python3.11-venv package; elsewhere use a Python 3.11 from python.org."
            ) from exc
    py = venv_python(target)
    if opts.inherit is not None:
        # A .pth line: the new environment sees the other one's packages behind its own.
        (_purelib(py) / "_inherited.pth").write_text(str(_purelib(venv_python(opts.inherit))) + "\n")
    pip = [str(py), "-m", "pip", "install"]
    offline = ["--no-index", "--find-links", str(opts.source)] if opts.source else []
    uv: list[str] | None = None
    if installer == "uv":
        title = steps.say()
        uv = _install_uv(py, opts.lock, title)
    if opts.accel != "none":
        title = steps.say(f" ({accel})")
        if uv:
            backend = {"auto": "auto", "cpu": "cpu", "cuda": "cu128"}.get(opts.accel, "auto")
            run_logged([*uv, f"torch=={TORCH_VERSION}", f"--torch-backend={backend}"], title)
        elif opts.source:
            run_logged([*pip, *offline, f"torch=={TORCH_VERSION}"], title)
        else:
            run_logged([*pip, *torch_install_args(accel)], title)
    title = steps.say()
    if Path(opts.lock) != LOCK or lock_is_current(opts.lock, opts.requirements):
        hashed = ["--require-hashes", "--no-deps", "-r", str(opts.lock)]
        run_logged([*uv, *hashed] if uv else [*pip, *offline, *hashed], title)
    else:
        # A pin changed since the lock was made: what requirements.txt says, unhashed, until
        # `python -m backend lock` is run again (a test fails meanwhile).
        print(f"note: {opts.lock.name} is older than {opts.requirements.name}: installing without hashes")
        reqs = ["-r", str(opts.requirements)]
        run_logged([*uv, *reqs] if uv else [*pip, *offline, *reqs], title)
    if accel == "cuda" and opts.accel != "none":
        # The same onnxruntime release built with CUDA, for the ViTPose/YOLO preprocessing; the two
        # packages share one module folder, so the CPU build goes first.
        run_logged([str(py), "-m", "pip", "uninstall", "-y", "onnxruntime"], title)
        run_logged([*pip, *offline, f"onnxruntime-gpu=={ORT_VERSION}"], title)
    if opts.extra:
        title = steps.say()
        run_logged([*pip, *offline, *opts.extra], title)
    return py


def _install_uv(py: Path, lock: Path, title: str) -> list[str] | None:
    """uv from the lock (hashed) into the new environment; None (pip installs) if that fails."""
    entry = next((e for e in _lock_entries(lock) if e.name == "uv"), None)
    if entry is None:
        print(f"note: {Path(lock).name} pins no uv; pip installs instead", flush=True)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "uv.txt"
        req.write_text(entry.line(marker=False) + "\n")
        try:
            run_logged(
                [str(py), "-m", "pip", "install", "--require-hashes", "--no-deps", "-r", str(req)], title
            )
        except SystemExit as exc:
            print(f"note: {exc}; pip installs instead", flush=True)
            return None
    exe = py.parent / ("uv.exe" if sys.platform == "win32" else "uv")
    return [str(exe), "pip", "install", "--python", str(py)]


def run_selftest(py: Path, title: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_ROOT), HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.update(TRANSFORMERS_VERBOSITY="error", DIFFUSERS_VERBOSITY="error", TQDM_DISABLE="1")
    env.pop("PYTHONHOME", None)
    run_logged([str(py), "-m", "backend", "selftest"], title, env)


def create_env(target: Path, accel: str = "auto", extra: list[str] | None = None, **kw) -> Path:
    """Install into ``target`` in place (developer set-up, CI)."""
    opts = Options(accel=accel, extra=list(extra or []), **kw)
    installer = _installer(opts)
    steps = Steps(plan_titles(target, opts, installer, selftest=False))
    py = build_env(target, opts, steps, installer)
    print(f"done: the backend's Python is {py}", flush=True)
    return py


def update(root: Path, opts: Options) -> Path:
    """A new environment beside the one in use; in use only once its self-test passes."""
    root = Path(root)
    (root / env_layout.ENVS).mkdir(parents=True, exist_ok=True)
    name = f"{env_layout.ENVS}/{time.strftime('%Y%m%d-%H%M%S')}"
    while (root / name).exists():
        name += "x"
    target = root / name
    installer = _installer(opts)
    steps = Steps(plan_titles(target, opts, installer, selftest=True))
    in_use = env_layout.read_pointer(root).current
    keep = f"; the environment in use ({in_use}) is unchanged" if in_use else ""
    try:
        py = build_env(target, opts, steps, installer)
        run_selftest(py, steps.say())
    except (SystemExit, KeyboardInterrupt, OSError, subprocess.SubprocessError) as exc:
        # Nothing points at the new environment yet: removing it frees the disk, nothing else.
        shutil.rmtree(target, ignore_errors=True)
        msg = str(exc) if isinstance(exc, SystemExit) and str(exc).startswith(FAILED) else f"{FAILED}{exc!r}"
        raise SystemExit(msg + keep) from exc
    steps.say()
    pointer = env_layout.switch_to(root, name)
    print(f"in use: {pointer.current} (rollback to: {pointer.previous or 'none'})", flush=True)
    print(f"done: the backend's Python is {py}", flush=True)
    return py


def rollback(root: Path) -> Path:
    pointer = env_layout.rollback(Path(root))
    py = env_layout.active_python(Path(root))
    print(f"rolled back: in use {pointer.current} (undo with --rollback: {pointer.previous})", flush=True)
    print(f"done: the backend's Python is {py}", flush=True)
    return py


def make_wheelhouse(
    dest: Path,
    lock: Path = LOCK,
    platform: str | None = None,
    python_version: str = PYTHON_VERSION,
    accel: str = "cpu",
) -> Path:
    """Every wheel an offline set-up needs for ``platform`` (this machine's when None), through
    pip as configured here; ``setup --from DEST`` then installs with no network."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = ["--only-binary=:all:", "--python-version", python_version]
    if platform:
        target += ["--platform", PLATFORMS[platform][0], "--implementation", "cp"]
    pip = [sys.executable, "-m", "pip", "download", "--dest", str(dest)]
    entries = [e for e in _lock_entries(lock) if marker_holds(e.marker, platform, python_version)]
    if not entries:
        raise SystemExit(f"{FAILED}no pinned packages in {lock}")
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "wanted.txt"
        req.write_text("\n".join(e.line(marker=False) for e in entries) + "\n")
        n = 1 if accel == "none" else 2
        print(f"[1/{n}] downloading {len(entries)} locked packages into {dest}", flush=True)
        run_logged(
            [*pip, *target, "--no-deps", "--require-hashes", "-r", str(req)],
            "downloading the locked packages",
        )
    if accel != "none":
        print(f"[2/2] downloading torch ({accel})", flush=True)
        system = (
            PLATFORMS[platform][2] if platform else {"win32": "Windows", "darwin": "Darwin"}.get(sys.platform)
        )
        index: list[str] = []
        if accel == "cuda" and system == "Windows":
            index = ["--index-url", WINDOWS_CUDA_INDEX]
        elif accel == "cpu" and system not in ("Windows", "Darwin"):
            index = ["--extra-index-url", LINUX_CPU_INDEX]
        run_logged([*pip, *target, *index, f"torch=={TORCH_VERSION}"], "downloading torch")
        if accel == "cuda":
            run_logged(
                [*pip, *target, "--no-deps", f"onnxruntime-gpu=={ORT_VERSION}"], "downloading onnxruntime-gpu"
            )
    print(f"done: {sum(1 for _ in dest.glob('*.whl'))} wheels in {dest}", flush=True)
    return dest
