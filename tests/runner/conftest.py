"""A study trained once for the whole session, for the tests that only read it."""

from __future__ import annotations

import pytest

from testkit.sweeping import run, write_sweep
from trained import EPOCHS, THRESHOLD, Trained


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
    done = run(["run", str(sweep), "--storage", url], folder, extra_env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    return Trained(folder, sweep, url, "shared", done.stdout)
