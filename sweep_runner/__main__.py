"""`python -m sweep_runner` is the `sweep` command."""

from sweep_runner.cli import run

run()
