"""Seed 004 step 2: Hessian / Gauss-Newton spectra of a run (task spectrum) and during training
(its callback). This line owns config.spectrum; WORKSPACE.md lists its experiments and output."""

from jaxland.spectrum.settings import defaults, validate_section

__all__ = ['defaults', 'validate_section']
