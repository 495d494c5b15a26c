"""What zoo writes to disk and reads back: run folders and what they say, checkpoints, whole files, W&B."""
