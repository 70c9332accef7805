"""The extension's release zip written with plain Python, for machines with neither Blender
nor the developer set-up. It follows the manifest's ``[build] paths_exclude_pattern`` the way
Blender's ``extension build`` reads it (gitignore rules: a leading ``/`` anchors a pattern at
the source folder, a trailing ``/`` matches folders only, a pattern without a ``/`` matches a
name at any depth), so both tools put the same files in the zip (tests/test_extension.py
compares them)."""

from __future__ import annotations

import fnmatch
import os
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "blender_manifest.toml"
# Already compressed: storing them saves time and nothing else (as Blender's tool does).
STORED_SUFFIXES = (".whl", ".zip", ".gz", ".bz2", ".xz", ".zst", ".lz4", ".7z")


@dataclass(frozen=True)
class Pattern:
    glob: str
    anchored: bool  # matched against the whole relative path, not just the name
    folders_only: bool
    negate: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        negate = text.startswith("!")
        text = text.lstrip("!")
        folders_only = text.endswith("/")
        text = text.rstrip("/")
        anchored = "/" in text
        return cls(text.lstrip("/"), anchored, folders_only, negate)

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        if self.anchored:
            # gitignore's `*` stops at `/`: compare segment by segment.
            parts, globs = rel.split("/"), self.glob.split("/")
            return len(parts) == len(globs) and all(
                fnmatch.fnmatchcase(p, g) for p, g in zip(parts, globs, strict=True)
            )
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], self.glob)


def read_manifest(source: Path) -> dict:
    return tomllib.loads((source / MANIFEST).read_text(encoding="utf-8"))


def excluded(rel: str, is_dir: bool, patterns: list[Pattern]) -> bool:
    out = False
    for pattern in patterns:  # the last matching pattern decides, as in gitignore
        if pattern.matches(rel, is_dir):
            out = not pattern.negate
    return out


def package_files(source: Path) -> list[str]:
    """The zip's member names: the manifest, then every file no exclude pattern removes."""
    build = read_manifest(source).get("build", {})
    if "paths" in build:
        raise SystemExit(f"{MANIFEST}: [build] paths is not supported here; use Blender's build")
    # Blender's defaults when a manifest declares no patterns.
    raw = build.get("paths_exclude_pattern", ["__pycache__/", ".*", "/*.zip"])
    patterns = [Pattern.parse(p) for p in raw if p.strip("!")]
    names = [MANIFEST]
    for folder, dirs, files in os.walk(source):
        base = Path(folder).relative_to(source).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(
            d for d in dirs if not (Path(folder, d).is_symlink() or excluded(prefix + d, True, patterns))
        )
        for name in sorted(files):
            rel = prefix + name
            if rel == MANIFEST or Path(folder, name).is_symlink() or excluded(rel, False, patterns):
                continue
            names.append(rel)
    return names


def build_zip(source: Path, output_dir: Path) -> Path:
    """Write ``<id>-<version>.zip`` into ``output_dir`` (the name Blender's tool gives it)."""
    source, output_dir = Path(source).resolve(), Path(output_dir)
    manifest = read_manifest(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{manifest['id']}-{manifest['version']}.zip"
    partial = target.with_name("." + target.name)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in package_files(source):
            stored = rel.lower().endswith(STORED_SUFFIXES)
            zf.write(source / rel, rel, compress_type=zipfile.ZIP_STORED if stored else None)
    partial.replace(target)
    return target
