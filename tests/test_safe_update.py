"""Set-up never breaks a working setup: an update goes into a new environment, is self-tested
there and only then put in use; a broken one leaves the working one in use; the previous one
is kept for a rollback; an offline wheelhouse installs with no index. The environments are
light (a stub lock on top of the developer environment's packages) so no torch is installed,
but the set-up, self-test, pointer switch and rollback are the real ones, run as the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from backend.env.env_layout import active_python
from backend.env.lockfile import LOCK, REQUIREMENTS, lock_is_current, parse_lock
from backend.env.setup_env import explain_failure

ROOT = Path(__file__).resolve().parents[1]


def make_wheel(folder: Path, name: str, version: str, module: str, code: str) -> Path:
    """A pure-Python wheel, as a package index would serve it."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{module}/__init__.py": code,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


def write_lock(path: Path, wheels: list[tuple[str, str, Path]]) -> Path:
    lines = [f"{n}=={v} --hash=sha256:{hashlib.sha256(w.read_bytes()).hexdigest()}" for n, v, w in wheels]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def setup_cli(backend_python):
    dev_env = Path(backend_python).absolute().parents[1]  # .dev/backend: torch and the rest, inherited
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")

    def run(*args: str, pip_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        cmd = [backend_python, "-m", "backend", *args]
        if args[0] == "setup" and "--rollback" not in args:
            cmd += ["--accel", "none", "--inherit", str(dev_env)]
        return subprocess.run(
            cmd, capture_output=True, text=True, env={**env, **(pip_env or {})}, cwd=ROOT, timeout=600
        )

    return run


def in_use(root: Path, backend_python: str) -> tuple[str, str]:
    """(which environment the add-on would start, the probe package's version there)."""
    pointer = json.loads((root / "current.json").read_text()) if (root / "current.json").exists() else {}

    py = active_python(root)
    probe = "import importlib.metadata as m; print(m.version('wan-probe'))"
    version = subprocess.run([str(py), "-c", probe], capture_output=True, text=True).stdout.strip()
    return pointer.get("current", "."), version


def test_broken_update_keeps_the_working_env_good_update_switches_rollback_returns(
    tmp_path, setup_cli, backend_python
):
    index = tmp_path / "index"  # what the "package index" serves
    index.mkdir()
    ok1 = make_wheel(index, "wan-probe", "1.0", "wan_probe", "VERSION = 1\n")
    ok2 = make_wheel(index, "wan-probe", "2.0", "wan_probe", "VERSION = 2\n")
    # A broken build of a package the backend imports: it installs fine, then fails on import.
    broken = make_wheel(index, "av", "99.0", "av", "raise ImportError('this build of av is broken')\n")
    lock_v2 = write_lock(tmp_path / "v2.lock", [("wan-probe", "2.0", ok2)])
    lock_broken = write_lock(tmp_path / "broken.lock", [("wan-probe", "2.0", ok2), ("av", "99.0", broken)])

    # The working setup: an environment made before updates were kept side by side (in place).
    root = tmp_path / "backend-env"
    r = setup_cli(
        "setup",
        "--venv",
        str(root),
        "--lock",
        str(write_lock(tmp_path / "v1.lock", [("wan-probe", "1.0", ok1)])),
        "--from",
        str(index),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert in_use(root, backend_python) == (".", "1.0")

    # Offline wheelhouse: made from the lock through pip as configured (here: the local index).
    house = tmp_path / "wheelhouse"
    r = setup_cli(
        "wheelhouse",
        str(house),
        "--lock",
        str(lock_v2),
        "--accel",
        "none",
        pip_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p.name for p in house.glob("*.whl")] == [ok2.name]

    # A broken update: installed, self-tested, refused; the working environment stays in use.
    r = setup_cli("setup", "--root", str(root), "--lock", str(lock_broken), "--from", str(index))
    assert r.returncode != 0
    assert "import av: ImportError: this build of av is broken" in r.stdout
    assert "setup failed" in r.stderr and "the environment in use (.) is unchanged" in r.stderr
    assert in_use(root, backend_python) == (".", "1.0")
    assert not list((root / "envs").iterdir())  # the failed environment is gone, not half-kept

    # A good update from the wheelhouse: self-test passes, then it is put in use.
    r = setup_cli("setup", "--root", str(root), "--lock", str(lock_v2), "--from", str(house))
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [ln for ln in r.stdout.splitlines() if re.match(r"\[\d+/\d+\] ", ln)]
    assert steps[-2].endswith("testing the new environment") and "selftest passed" in r.stdout
    name, version = in_use(root, backend_python)
    assert name.startswith("envs/") and version == "2.0"
    assert json.loads((root / "current.json").read_text())["previous"] == "."

    # Rollback returns to the previous one; a second rollback undoes it.
    r = setup_cli("setup", "--root", str(root), "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert in_use(root, backend_python) == (".", "1.0")
    setup_cli("setup", "--root", str(root), "--rollback")
    assert in_use(root, backend_python) == (name, "2.0")


def test_lock_covers_every_requirement_with_hashes():
    assert lock_is_current(), "requirements.txt changed: run `python -m backend lock`"
    locked = {e.name: e for e in parse_lock(LOCK.read_text())}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            entry = locked[name.lower().replace("_", "-")]
            assert entry.version == version and entry.hashes, name
    assert "torch" not in locked and not any(n.startswith("nvidia-") for n in locked)


@pytest.mark.parametrize(
    "output, words",
    [
        ("ProxyError('Cannot connect to proxy.')", "proxy is in the way"),
        (
            "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
            "no internet",
        ),
        ("OSError: [Errno 28] No space left on device", "disk is full"),
        (
            "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.",
            "does not match the hash",
        ),
    ],
)
def test_failures_say_what_to_do(output, words):
    assert words in (explain_failure(["Collecting x", output]) or "")
