"""Blender UI: preferences, scene settings and the sidebar panels."""
