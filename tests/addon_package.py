"""The repository root imported as the package Blender installs, without Blender: the add-on's
core modules (the job session, the client) are bpy-free and reach the protocol through the
package, so tests can drive them against a real backend."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

NAME = "wan_animate_ext_under_test"


def extension_package():
    if NAME not in sys.modules:
        root = Path(__file__).resolve().parent.parent
        spec = importlib.util.spec_from_file_location(
            NAME, root / "__init__.py", submodule_search_locations=[str(root)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        spec.loader.exec_module(module)
    for sub in (
        "backend.protocol",
        "wan_animate_blender.core.client",
        "wan_animate_blender.core.job_session",
    ):
        importlib.import_module(f"{NAME}.{sub}")
    return sys.modules[NAME]
