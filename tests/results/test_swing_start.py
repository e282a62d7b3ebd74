"""`[report] swing_start`: the sweep file's setting reaches the swings of every table.

Two studies made by `sweep run --max-trials 0` from files that differ only in
`swing_start` get the same hand-made epochs (no training): a level val_loss with
bumps of 3, 2 and 1 at epochs 3, 7 and 14, so each window start gives another
`val_loss_swing`.
"""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pandas as pd
import pytest

import results
from results.report.metrics import DEFAULT_SWING_START, swing_amplitude
from results.store.result_store import ResultStore
from sweep_runner.cli import main
from sweeps.sections import Report
from testkit.tiny_sweeps import sweep_text

pytestmark = pytest.mark.timeout(60)

EPOCHS = 20
BUMPS = {3: 3.0, 7: 2.0, 14: 1.0}  # epoch: height on a level val_loss of 1
#: The swing each window start leaves: the bumps after it.
SWINGS = {0: 3.0, 5: 2.0, 8: 1.0}


def _val_loss() -> list[float]:
    return [1.0 + BUMPS.get(epoch, 0.0) for epoch in range(1, EPOCHS + 1)]


def _val_acc() -> list[float]:
    return [0.9 - height / 10 for height in (value - 1.0 for value in _val_loss())]


def _make_study(tmp_path: Path, url: str, name: str, report: str) -> None:
    """The study of a one-run sweep file with `report` as its `[report]` lines, and
    the run's epochs at a constant LR (the window runs to the last epoch)."""
    path = tmp_path / f"{name}.toml"
    path.write_text(sweep_text(name, epochs=EPOCHS, schedule=False, extra=f"[report]\n{report}\n"))
    assert main(["run", str(path), "--storage", url, "--max-trials", "0"]) == 0
    with ResultStore(url) as store:
        (run,) = store.runs(name)
        _train(store, run["id"], float(run["config"]["learning_rate"]))


def _train(store: ResultStore, run_id: int, alpha: float) -> None:
    """Records the hand-made epochs of a run, at a constant LR α, and finishes it."""
    store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=3)
    for epoch, (val_loss, val_acc) in enumerate(zip(_val_loss(), _val_acc(), strict=True), start=1):
        store.record_epoch(run_id, {
            "epoch": epoch, "loss": 0.5, "acc": 0.95, "val_loss": val_loss, "val_acc": val_acc,
            "lr": alpha, "seconds": 1.0, "images_per_second": 500.0,
        })
    store.finish_run(run_id, "complete", device="cpu", versions={"keras": "3"})


def _raw(capsys: pytest.CaptureFixture[str], *argv: str) -> pd.Series:
    assert main(["export", *argv, "--style", "raw", "--format", "csv"]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out)).iloc[0]


def test_the_swing_window_is_the_sweep_files_setting(tmp_path, capsys):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    _make_study(tmp_path, url, "early", "swing_start = 0")
    _make_study(tmp_path, url, "late", "swing_start = 8")
    capsys.readouterr()
    lr = [1.0] * EPOCHS
    for start, swing in SWINGS.items():  # the figures below are the metric's own
        assert swing_amplitude(_val_loss(), lr, start=start) == pytest.approx(swing)

    early, late = _raw(capsys, "early", "--storage", url), _raw(capsys, "late", "--storage", url)
    assert early["val_loss_swing"] == pytest.approx(SWINGS[0])
    assert late["val_loss_swing"] == pytest.approx(SWINGS[8])
    assert early["val_acc_dip"] == pytest.approx(SWINGS[0] / 10)
    assert late["val_acc_dip"] == pytest.approx(SWINGS[8] / 10)
    # Only the swings depend on it: the same epochs give every other metric alike.
    assert early["delta_val_loss"] == late["delta_val_loss"]
    assert early["val_acc_best"] == late["val_acc_best"]

    # `--swing-start` and `results.load(swing_start=)` override the study's own.
    assert _raw(capsys, "early", "--storage", url, "--swing-start", "8")["val_loss_swing"] == pytest.approx(SWINGS[8])
    assert results.load(url, "late", swing_start=0)["val_loss_swing"].iloc[0] == pytest.approx(SWINGS[0])
    assert results.load(url, "late")["val_loss_swing"].iloc[0] == pytest.approx(SWINGS[8])


def test_a_study_without_the_setting_gets_the_default(tmp_path, capsys):
    """A study made before `swing_start` existed (the attribute absent) skips 5 epochs."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert Report().swing_start == DEFAULT_SWING_START == 5
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    _make_study(tmp_path, url, "late", "swing_start = 8")
    old = optuna.create_study(storage=url, study_name="old")  # no report attributes
    with ResultStore(url) as store:
        (run,) = store.runs("late")
        run_id = store.register_run("old", run["run_key"], label="0", comment="", config=run["config"])
        _train(store, run_id, float(run["config"]["learning_rate"]))
    assert "report_swing_start" not in old.user_attrs
    capsys.readouterr()
    assert _raw(capsys, "old", "--storage", url)["val_loss_swing"] == pytest.approx(SWINGS[DEFAULT_SWING_START])
