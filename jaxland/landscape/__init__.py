"""Seed 004's quadratic-approximation probes: line searches, fits, spectral dynamics, per-example
gradients (task `landscape`), and interventions in the eigenbasis (landscape.intervene, task
`intervene`). This line owns config.landscape; WORKSPACE.md lists its experiments."""

from jaxland.landscape.settings import defaults, validate_section

__all__ = ['defaults', 'validate_section']
