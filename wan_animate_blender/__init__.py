"""The add-on's own logic. ``io`` is bpy-free (testable anywhere); ``blender``
holds everything that touches bpy, with version differences in ``blender.compat``."""
