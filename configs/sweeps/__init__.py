"""Sweep configs: `python -m jaxland.sweep --config=configs/sweeps/<x>.py[:arg] --workdir=DIR`."""
