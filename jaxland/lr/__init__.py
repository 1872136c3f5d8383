"""Seed 001: learning-rate range tests, their suggestion rules and their figures (task lr_range).

This line owns config.lr_range; WORKSPACE.md lists its experiments.
"""

from jaxland.lr.settings import defaults, validate_section

__all__ = ['defaults', 'validate_section']
