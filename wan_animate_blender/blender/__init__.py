"""Everything in the add-on's logic that touches bpy."""
