"""Launchers: one data-parallel run over several processes or hosts, `jax.distributed` style.

`python -m launch.train` is `jaxland.main` after `jax.distributed.initialize()` (SLURM or explicit
coordinator); `python -m launch.local` starts N such processes on this machine; `multihost.sbatch`
is the SLURM template. Sweeps (many independent runs) use `python -m jaxland.sweep` instead.
"""
