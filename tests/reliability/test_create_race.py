"""Two `sweep run` started at the same moment on a new database both work: one creates
the tables, the study and its WAITING trials, the other finds them."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import write_sweep

ROUNDS = 3


def _prepare(barrier, sweep_path: str, url: str, answers) -> None:
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import prepare_study
    from sweeps.sweep_file import load_sweep

    quiet_optuna()
    sweep = load_sweep(sweep_path)
    barrier.wait()  # both start creating at the same moment
    try:
        prepare_study(sweep, url).store.close()
        answers.put("ok")
    except Exception as error:  # noqa: BLE001 - the answer is what the test checks
        answers.put(f"{type(error).__name__}: {error}")


def _race(sweep_path: Path, url: str) -> list[str]:
    context = multiprocessing.get_context("fork")  # optuna is imported once, before
    barrier, answers = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_prepare, args=(barrier, str(sweep_path), url, answers)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    return sorted(answers.get(timeout=5) for _ in processes)


def _check(url: str) -> None:
    trials = optuna.load_study(study_name="race", storage=url).get_trials()
    with ResultStore(url) as store:
        runs = store.runs("race")
    assert len(runs) == 4
    # One WAITING trial per run, each the one its run points at: no orphan.
    assert sorted(t.number for t in trials if t.state.name == "WAITING") == sorted(r["trial_number"] for r in runs)
    assert len(trials) == 4


@pytest.mark.timeout(240)
def test_two_sweep_runs_at_once_on_a_new_sqlite_database(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):  # each round a new database: the race is at creation
        folder = tmp_path / str(round_)
        folder.mkdir()
        sweep = write_sweep(folder, "race", space="weight_decay = [0.05, 0.1, 0.2, 0.3]")
        url = f"sqlite:///{folder / 'sweeps.db'}"
        assert _race(sweep, url) == ["ok", "ok"]
        _check(url)


@pytest.mark.timeout(240)
@pytest.mark.postgres
def test_two_sweep_runs_at_once_on_a_new_postgresql_database(tmp_path: Path, postgres_url: str) -> None:
    sweep = write_sweep(tmp_path, "race", space="weight_decay = [0.05, 0.1, 0.2, 0.3]")
    assert _race(sweep, postgres_url) == ["ok", "ok"]
    _check(postgres_url)
