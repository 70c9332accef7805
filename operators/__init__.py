"""Blender operators: Generate, Cancel, backend set-up and stop."""
