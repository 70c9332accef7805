"""The extension as an artist gets it: Blender's validator accepts it, the built
.zip leaves out tests and dev files, and it installs and registers cleanly; the zip
`tools/dev.py build` writes without Blender or the developer set-up holds the same files
as Blender's own tool puts in, and installs the same way."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import BLENDER_VERSIONS, BPY, RANGE_ENDS, ROOT, run_blender


def test_zip_has_the_addon_and_no_dev_files(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "backend/__main__.py" in names and "backend/requirements.txt" in names
    assert "operators/generate.py" in names and "panels/sidebar.py" in names
    leaked = [n for n in names if n.startswith(("tests/", "tools/", ".ci/", ".dev/", "benchmarks/", "dist/"))]
    assert leaked == []
    assert not any("__pycache__" in n for n in names)


@BLENDER_VERSIONS
def test_install_register_unregister_twice(bl, extension_zip, tmp_path):
    r = run_blender(bl, "register_cycle.py", {"zip": extension_zip}, tmp_path)
    assert r["version"][:2] == [int(x) for x in bl.split(".")]
    on = {"generate_op": True, "scene_prop": True, "panel_3d": True, "panel_seq": True, "enabled": True}
    off = {"generate_op": False, "scene_prop": False, "panel_3d": False, "panel_seq": False, "enabled": False}
    assert r["after_install"] == on
    assert len(r["cycles"]) == 2
    for cycle in r["cycles"]:
        assert cycle["off"] == off
        assert cycle["on"] == on
    assert r["defaults"] == {"steps": 20, "segment_frames": 77, "quality": "480p"}


def _plain_zip(tmp_path) -> Path:
    """The release zip as `tools/dev.py build` writes it on a machine with no Blender and no .dev."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from ext_zip import build_zip
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return build_zip(ROOT, tmp_path / "plain")


@pytest.mark.parametrize("bl", sorted(BPY))
def test_plain_zip_has_the_files_blenders_tool_puts_in(bl, tmp_path):
    probe = "import importlib.util as u; print(list(u.find_spec('bpy').submodule_search_locations)[0])"
    site = subprocess.run([BPY[bl], "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    cli = next(Path(site).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    out = tmp_path / "blender"
    out.mkdir()
    subprocess.run(
        [BPY[bl], str(cli), "build", "--source-dir", str(ROOT), "--output-dir", str(out)],
        check=True,
        capture_output=True,
    )
    by_blender = next(out.glob("*.zip"))
    plain = _plain_zip(tmp_path)
    assert plain.name == by_blender.name  # wan_animate-<version>.zip
    assert sorted(zipfile.ZipFile(plain).namelist()) == sorted(zipfile.ZipFile(by_blender).namelist())


@RANGE_ENDS
def test_plain_zip_installs_and_registers(bl, tmp_path):
    r = run_blender(bl, "register_cycle.py", {"zip": str(_plain_zip(tmp_path))}, tmp_path)
    on = {"generate_op": True, "scene_prop": True, "panel_3d": True, "panel_seq": True, "enabled": True}
    assert r["after_install"] == on
    assert all(cycle["on"] == on for cycle in r["cycles"])
