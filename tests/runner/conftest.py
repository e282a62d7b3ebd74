"""A study trained once for the whole session, for the tests that only read it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeping import run, write_sweep

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


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The session's one trained study, multi-objective: best val_acc and the epoch of
    the threshold. Read it, or `copy_to` a folder of your own to change it."""
    folder = tmp_path_factory.mktemp("trained")
    sweep = write_sweep(
        folder, "shared", epochs=EPOCHS, train_size=256,
        extra=f'[study]\nobjectives = ["val_acc", "threshold_epoch"]\n[report]\nthreshold = {THRESHOLD}',
    )
    url = f"sqlite:///{folder / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url], folder)
    assert done.returncode == 0, done.stderr
    return Trained(folder, sweep, url, "shared", done.stdout)
