"""One ETA rule (`results.store.eta`), shown alike by `sweep run`'s progress and `sweep status`."""

from __future__ import annotations

import io
import math
import socket
from pathlib import Path

import pytest
from rich.console import Console

from results.store.eta import RunWork, eta_seconds, format_duration, run_seconds_left, timed_epochs
from results.report.status import study_status
from results.store.result_store import ResultStore
from sweep_runner.monitor import Monitor

pytestmark = pytest.mark.timeout(60)


def test_each_run_goes_at_its_own_pace_and_the_untimed_at_the_studys() -> None:
    done = RunWork(0, seconds=30.0, timed=3)  # 10 s an epoch
    running = RunWork(2, seconds=20.0, timed=1)  # 20 s an epoch, 2 left: 40 s
    waiting = RunWork(3)  # no epoch yet: the study's 50 s / 4 epochs, 3 left: 37.5 s
    assert run_seconds_left(running, 12.5) == 40.0
    assert eta_seconds([done, running, waiting], running=1) == 77.5
    assert eta_seconds([done, running, waiting], running=2) == 77.5 / 2  # the workers share it


def test_no_eta_before_an_epoch_is_timed_or_while_nothing_runs_and_zero_when_done() -> None:
    assert eta_seconds([RunWork(3), RunWork(3)], running=2) is None
    assert eta_seconds([RunWork(3, 10.0, 1)], running=0) is None
    assert eta_seconds([RunWork(0, 10.0, 1)], running=0) == 0.0


def test_missing_and_non_finite_epoch_times_are_left_out() -> None:
    assert timed_epochs([10.0, None, math.nan, math.inf, 20.0]) == (30.0, 2)
    assert format_duration(None) == "" and format_duration(math.nan) == ""
    assert [format_duration(s) for s in (45, 760, 11100)] == ["45s", "12m 40s", "3h 05m"]


def _epoch(epoch: int, seconds: float) -> dict[str, float]:
    return {"epoch": epoch, "loss": 1.0, "acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "lr": 1e-3,
            "seconds": seconds, "images_per_second": 100.0}


def test_the_progress_and_status_show_the_same_eta(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path / 'sweeps.db'}")
    config = {"epochs": 3, "learning_rate": 1e-3, "weight_decay": 0.1}
    done, running, _ = (store.register_run("s", f"k{i}", label=str(i), comment=None, config=config)
                        for i in range(3))
    me = f"{socket.gethostname()}/1/x"  # pid 1 lives: the run is not interrupted
    for run_id, seconds in ((done, (10.0, 10.0, 10.0)), (running, (20.0,))):
        store.claim_run(run_id, worker=me, host="h", stale_after=20, max_attempts=3)
        for epoch, spent in enumerate(seconds, 1):
            store.record_epoch(run_id, _epoch(epoch, spent))
    store.finish_run(done, "complete")

    with Monitor(store, "s", "plain", out=io.StringIO()) as monitor:
        monitor.poll()
        live = monitor.eta_seconds(store.runs("s"))
    out = io.StringIO()
    Console(file=out, width=200).print(study_status(store, "s", threshold=0.92))
    assert live == 77.5
    assert f"ETA {format_duration(live)}: 5 epochs left, 1 running" in out.getvalue()
    store.close()
