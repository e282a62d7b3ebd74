"""A way out of a stuck study: `sweep retry` hands failed runs out again, `sweep status`
says which command continues, and `--max-trials 0` only creates the study."""

from __future__ import annotations

from pathlib import Path

import pytest

from results.store.result_store import ResultStore
from sweep_runner.cli import main
from testkit.sweeping import run, write_sweep

CONFIG = {"epochs": 2}


def _study(tmp_path: Path, url: str | None = None) -> tuple[str, dict[str, int]]:
    url = url or f"sqlite:///{tmp_path / 'sweeps.db'}"
    ids = {}
    with ResultStore(url) as store:
        for label, state in (("3A", "failed"), ("5", "failed"), ("7", "complete"), ("8", "waiting")):
            ids[label] = run_id = store.register_run("s", f"key-{label}", label=label, comment=None, config=CONFIG)
            if state != "waiting":
                store.claim_run(run_id, worker="w", host="h", stale_after=20, max_attempts=1)
                store.finish_run(run_id, state, failure_reason="input error: x" if state == "failed" else None)
    return url, ids


@pytest.mark.timeout(60)
def test_retry_failed_hands_the_runs_out_again(tmp_path: Path, capsys) -> None:
    _retry_failed(*_study(tmp_path), capsys)


@pytest.mark.timeout(120)
@pytest.mark.postgres
def test_retry_failed_on_postgresql(tmp_path: Path, postgres_url: str, capsys) -> None:
    _retry_failed(*_study(tmp_path, postgres_url), capsys)


def _retry_failed(url: str, ids: dict[str, int], capsys) -> None:
    assert main(["status", "s", "--storage", url]) == 0
    hint = capsys.readouterr().out
    assert "sweep retry s --failed --storage" in " ".join(hint.split())

    assert main(["retry", "s", "--failed", "--storage", url]) == 0
    assert "reset 2 run(s): 3A, 5" in capsys.readouterr().out
    with ResultStore(url) as store:
        runs = {r["label"]: r for r in store.runs("s")}
        assert runs["3A"]["state"] == runs["5"]["state"] == "stopped"
        assert runs["3A"]["attempts"] == 1  # the history is kept
        assert runs["7"]["state"] == "complete"
        # Claimable again although its one attempt is spent.
        assert store.claim_run(ids["3A"], worker="w2", host="h", stale_after=20, max_attempts=1)


@pytest.mark.timeout(60)
def test_retry_refuses_a_complete_or_unknown_run_in_one_line(tmp_path: Path, capsys) -> None:
    url, _ = _study(tmp_path)
    assert main(["retry", "s", "--runs", "3A,7", "--storage", url]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "7 is complete" in error
    assert main(["retry", "s", "--runs", "9", "--storage", url]) == 2
    error = capsys.readouterr().err
    assert error == "--runs: no run '9' in study 's'; its labels: 3A, 5, 7, 8\n"
    with ResultStore(url) as store:  # nothing was reset by the refused command
        assert [r["state"] for r in store.runs("s")] == ["failed", "failed", "complete", "waiting"]


@pytest.mark.timeout(120)
def test_max_trials_0_only_creates_the_study(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "later", space="weight_decay = [0.05, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"2 run(s) registered, none trained (--max-trials 0); train them with `sweep worker later --storage {url}`" in done.stderr
    with ResultStore(url) as store:
        assert [r["state"] for r in store.runs("later")] == ["waiting", "waiting"]
