"""The reliability matrix drives `sweep` as a user would (tests/runner/sweeping.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "runner"))
