"""Every Blender-version difference (4.2 LTS to 5.0) the add-on meets, in one place."""

from __future__ import annotations

import bpy

VERSION = bpy.app.version


def strips(editor):
    """All strips of a sequence editor: ``strips`` since 4.4, ``sequences`` before.
    An empty collection is falsy, so this tests for the attribute, not its value."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor):
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all
