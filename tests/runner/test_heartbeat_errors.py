"""The heartbeat thread retries a passing database error, logging it, and stops the
child on any other: a worker that cannot beat must not train on unseen."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from sweep_runner import worker as worker_module


class _Store:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.beats = errors, 0

    def heartbeat(self, run_id: int, worker: str, attempt: int | None = None) -> bool:
        self.beats += 1
        if self.errors:
            raise self.errors.pop(0)
        return True


def _beat(monkeypatch, errors: list[BaseException]) -> tuple[worker_module._Heartbeat, _Store, subprocess.Popen]:  # noqa: ANN001
    store = _Store(errors)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fake = SimpleNamespace(
        opened=SimpleNamespace(store=store, trials=SimpleNamespace(heartbeat=lambda trial_id: None)),
        id="host/1/x", child=child,
        timing=SimpleNamespace(heartbeat_interval=0.01), outage=worker_module.Outage(300.0, "worker host/1/x"),
    )
    return worker_module._Heartbeat(fake, 1, 1, 1), store, child


@pytest.mark.timeout(60)
def test_a_passing_database_error_is_logged_and_retried(monkeypatch, caplog) -> None:  # noqa: ANN001
    beat, store, child = _beat(monkeypatch, [OperationalError("UPDATE runs", {}, Exception("database is locked"))])
    with caplog.at_level(logging.WARNING, logger="sweep_runner.worker"):
        beat.start()
        while store.beats < 3:
            time.sleep(0.01)
        beat.stop()
    assert not beat.lost and child.poll() is None
    assert "heartbeat failed, retrying" in caplog.text and "database is locked" in caplog.text
    child.kill()
    child.wait()


@pytest.mark.timeout(60)
def test_an_unexpected_error_stops_the_child(monkeypatch, caplog) -> None:  # noqa: ANN001
    beat, store, child = _beat(monkeypatch, [KeyError("surprise")])
    monkeypatch.setattr("threading.excepthook", lambda args: None)  # the re-raise, already logged
    with caplog.at_level(logging.ERROR, logger="sweep_runner.worker"):
        beat.start()
        assert child.wait(30) != 0
        beat.stop()
    assert beat.lost
    assert "heartbeat stopped" in caplog.text and "surprise" in caplog.text


@pytest.mark.timeout(60)
def test_a_claim_beats_before_its_trial_is_open(monkeypatch) -> None:  # noqa: ANN001
    """The worker starts beating at the claim: opening the trial can take seconds."""
    beat, store, child = _beat(monkeypatch, [])
    trial_beats: list[int] = []
    beat.worker.opened.trials = SimpleNamespace(heartbeat=trial_beats.append)
    beat.trial_id = None
    beat.start()
    try:
        while store.beats < 3:
            time.sleep(0.01)
        assert trial_beats == []  # no trial yet: the run's claim beats alone
        beat.trial_id = 7
        while not trial_beats:
            time.sleep(0.01)
    finally:
        beat.stop()
        child.kill()
        child.wait()
    assert set(trial_beats) == {7} and not beat.lost
