"""bpy-free logic: resolution planning, the backend client, job sessions."""
