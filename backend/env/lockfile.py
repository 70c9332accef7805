"""``backend/requirements.lock``: every package the backend installs, pinned with the sha256 of
each of its wheels on every platform, made from ``backend/requirements.txt`` by
``python -m backend lock``.

torch and its accelerator stack (triton, the CUDA libraries) are left out: they are chosen per
machine at set-up (CPU, CUDA, ROCm or Apple's MPS build), so no single hash fits them. The lock
records the digest of the requirements.txt it was made from, so set-up can tell a stale lock.

Stdlib only (``packaging`` is used where present, to read markers for another platform)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1]
REQUIREMENTS = BACKEND / "requirements.txt"
LOCK = BACKEND / "requirements.lock"
TORCH_VERSION = "2.13.0"
PYTHON_VERSION = "3.11"
DIGEST_PREFIX = "# requirements.txt sha256: "
ACCELERATOR = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*|pytorch-triton.*)$")


def requirements_digest(requirements: Path = REQUIREMENTS) -> str:
    # Line endings normalised: a checkout with CRLF endings is the same requirements file.
    text = Path(requirements).read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(text).hexdigest()


def lock_is_current(lock: Path = LOCK, requirements: Path = REQUIREMENTS) -> bool:
    try:
        head = Path(lock).read_text(encoding="utf-8").splitlines()[:5]
    except OSError:
        return False
    return DIGEST_PREFIX + requirements_digest(requirements) in head


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]

    def line(self, marker: bool = True) -> str:
        spec = f"{self.name}=={self.version}" + (f" ; {self.marker}" if marker and self.marker else "")
        return spec + "".join(f" --hash=sha256:{h}" for h in self.hashes)


def parse_lock(text: str) -> list[Entry]:
    """The pinned entries of a hashed requirements file (``name==version ; marker`` then
    ``--hash`` continuation lines)."""
    entries: list[Entry] = []
    logical: list[str] = []
    for raw in text.splitlines() + [""]:
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if logical and not line.startswith("--hash"):
            joined = " ".join(logical)
            spec, _, marker = joined.partition(";")
            head = spec.split("--hash", 1)[0].strip()
            marker = marker.split("--hash", 1)[0].strip().rstrip("\\").strip()
            name, _, version = head.partition("==")
            hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", joined))
            entries.append(Entry(name.strip().lower(), version.strip(), marker, hashes))
            logical = []
        if line and (line.startswith("--hash") or "==" in line):
            logical.append(line.rstrip("\\").strip())
    return entries


# Target platforms a wheelhouse can be made for: pip's --platform tag and the marker values there.
PLATFORMS = {
    "linux_x86_64": ("manylinux_2_28_x86_64", "linux", "Linux", "x86_64"),
    "linux_aarch64": ("manylinux_2_28_aarch64", "linux", "Linux", "aarch64"),
    "windows_x86_64": ("win_amd64", "win32", "Windows", "AMD64"),
    "macos_arm64": ("macosx_11_0_arm64", "darwin", "Darwin", "arm64"),
}


def marker_holds(marker: str, platform: str | None, python_version: str) -> bool:
    """Whether an entry's marker holds on the target; without ``packaging`` (a bare Python),
    markers are read for this machine, which is right when the target is this machine."""
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:
        return True
    env: dict[str, str] = {}
    if platform:
        _, sys_platform, system, machine = PLATFORMS[platform]
        env = {"sys_platform": sys_platform, "platform_system": system, "platform_machine": machine}
        env["os_name"] = "nt" if system == "Windows" else "posix"
    env["python_version"] = python_version
    env["python_full_version"] = python_version + ".0"
    env["implementation_name"] = env["platform_python_implementation"] = "cpython"
    env["platform_python_implementation"] = "CPython"
    return Marker(marker).evaluate(env)


def _uv_command() -> list[str] | None:
    if found := shutil.which("uv"):
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def generate_lock(out: Path = LOCK, requirements: Path = REQUIREMENTS) -> Path:
    """Resolve requirements.txt (with torch at TORCH_VERSION, so the rest agrees with it) for every
    platform with uv, else for this one with pip-tools, and write the lock without torch's stack."""
    with tempfile.TemporaryDirectory() as tmp:
        pin = Path(tmp) / "torch.txt"
        pin.write_text(f"torch=={TORCH_VERSION}\n")
        draft = Path(tmp) / "draft.txt"
        uv = _uv_command()
        if uv:
            base = [*uv, "pip", "compile", "--universal", "--generate-hashes", "--python-version"]
            base += [PYTHON_VERSION, "--quiet", str(requirements), str(pin)]
            subprocess.run([*base, "-o", str(draft)], check=True)
            skip = sorted({e.name for e in parse_lock(draft.read_text()) if ACCELERATOR.match(e.name)})
            no_emit = [a for name in skip for a in ("--no-emit-package", name)]
            subprocess.run([*base, "--no-header", *no_emit, "-o", str(draft)], check=True)
            how = "uv pip compile --universal --generate-hashes (every platform)"
        elif importlib.util.find_spec("piptools") is not None:
            cmd = [sys.executable, "-m", "piptools", "compile", "--generate-hashes", "--quiet"]
            cmd += ["--no-header", "--allow-unsafe", str(requirements), str(pin), "-o", str(draft)]
            subprocess.run(cmd, check=True)
            text = draft.read_text()
            keep = [e for e in parse_lock(text) if not ACCELERATOR.match(e.name)]
            draft.write_text("\n".join(e.line() for e in keep) + "\n")
            how = (
                "pip-compile --generate-hashes (this platform only: install uv for a lock for every platform)"
            )
        else:
            raise SystemExit(
                "Making the lock needs uv ('pip install uv') or pip-tools ('pip install pip-tools')."
            )
        header = [
            "# The backend's packages with the hashes of their wheels: made by `python -m backend lock`",
            f"# from requirements.txt with {how}.",
            "# torch and its accelerator libraries are not here: set-up picks them for the machine.",
            DIGEST_PREFIX + requirements_digest(requirements),
        ]
        Path(out).write_text("\n".join(header) + "\n" + draft.read_text(), encoding="utf-8")
    return Path(out)
