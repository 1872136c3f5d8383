"""Seed 004's quadratic-approximation probes: line searches, fits, spectral dynamics, per-example
gradients (task `landscape`), and interventions in the eigenbasis (task `intervene`).

Modules: problem (a model as a function of flat params), eigen (Ritz pairs via
jaxland.curvature), lines (batched line searches), fits (quadratic fits and predictions),
dynamics (overlaps, trajectory projections, settling, gradient noise), per_example (per-example
gradients on the eigenbasis), probes + task + figures (the `landscape` task), interventions +
intervene (the `intervene` task).
"""
