"""The run directory: its small record files (workdir), Orbax checkpoints, and every other file a
run leaves (artifacts). No other module reads or writes inside a run directory."""
