"""Reference-clip preprocessing: frames in, pose / face conditioning frames out."""
