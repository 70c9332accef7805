"""The add-on's own logic, between the UI (operators/, panels/) and the backend.
``core`` is bpy-free (testable anywhere); ``blender`` holds everything that touches
bpy, with version differences in ``blender.compat``. Nothing here imports the UI."""
