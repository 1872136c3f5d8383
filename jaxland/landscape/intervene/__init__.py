"""Seed 004 steps 4-5: interventions in the eigenbasis of a trained checkpoint (task intervene).
This part of the landscape line owns config.intervene."""

from jaxland.landscape.intervene.settings import defaults, validate_section

__all__ = ['defaults', 'validate_section']
