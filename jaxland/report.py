"""`python -m jaxland.report SWEEP_DIR ...`: jaxland.sweep.report under its old name."""

from jaxland.sweep import report

if __name__ == '__main__':
  report.cli()
