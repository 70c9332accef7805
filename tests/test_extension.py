"""The extension as an artist gets it: Blender's validator accepts it, the built
.zip leaves out tests and dev files, and it installs and registers cleanly."""

from __future__ import annotations

import zipfile

from conftest import BLENDER_VERSIONS, run_blender


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
