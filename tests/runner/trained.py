"""The session's one trained study (tests/runner/conftest.py) and what it was made of."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

EPOCHS = 2
# Low enough for two epochs on 256 digits to reach it: the threshold epoch is a number.
THRESHOLD = 0.2


@dataclass
class Trained:
    """A finished `sweep run` of a two-run, two-objective study (λ 0.05 and 0.2).

    Attributes:
        folder: its folder (the sweep file, the database, the checkpoints).
        sweep: the sweep file.
        url: the SQLite URL.
        name: the study.
        stdout: what `sweep run` printed.
    """

    folder: Path
    sweep: Path
    url: str
    name: str
    stdout: str

    def copy_to(self, folder: Path) -> str:
        """A copy of the database in `folder`, for a test that changes the study; its URL."""
        for path in self.folder.glob("sweeps.db*"):
            shutil.copy(path, folder / path.name)
        return f"sqlite:///{folder / 'sweeps.db'}"


