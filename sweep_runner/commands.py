"""The runner's verbs on the command line: run, resume, worker."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_parsers(commands: argparse._SubParsersAction, add_storage: Callable[[argparse.ArgumentParser], None]) -> None:
    """Adds `run`, `resume` and `worker` (filled in by the runner issue)."""
