"""Many workers on one study: each grid point trained to completion exactly once, on
SQLite (three, one of them killed and its run taken over) and on a real PostgreSQL
server (two); a search spread across workers, whose crashed trial is retried with its params."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from datetime import timedelta
from pathlib import Path

import optuna
import pytest
from sqlalchemy import update

from results.store.models import RUNS
from results.store.result_store import ResultStore
from sweep_runner.groups import GROUP_FILE, claim_group
from sweep_runner.study import prepare_study
from sweep_runner.worker import Worker, WorkerOptions
from sweeps.sweep_file import load_sweep
from testkit.sweeping import crashing_children, dedent, kill, rest_of_stdout, run, start, wait_for, write_sweep

# As many points as workers, started together: they race for every claim.
THREE_POINTS = "weight_decay = [0.05, 0.1, 0.2]"
TWO_POINTS = "weight_decay = [0.05, 0.2]"
LOCKED = re.compile(r"is locked")


def _worker_logs(folder: Path, study: str) -> list[str]:
    """The workers' logs, beside the checkpoints."""
    logs = list((folder / "checkpoints" / study).glob("worker-*.log"))
    assert logs, "no worker log to read"
    return [log.read_text(errors="replace") for log in logs]


def _lock_errors(folder: Path, study: str, *outputs: str) -> list[str]:
    """Lines saying SQLite's "database is locked" in the command's output, the workers'
    logs and the runs' training logs."""
    runs = [log.read_text(errors="replace") for log in (folder / "checkpoints" / study).glob("*/train.log")]
    texts = [*outputs, *_worker_logs(folder, study), *runs]
    return [line for text in texts for line in text.splitlines() if LOCKED.search(line)]


def _idle_children(folder: Path, study: str) -> list[str]:
    """Lines of the workers' logs saying a child started ahead got no run: with as many
    workers as runs, none is due (the workers race for their first claims)."""
    return [line for text in _worker_logs(folder, study) for line in text.splitlines() if "got no run" in line]


def _check_exactly_once(url: str, study: str, points: int, epochs: int) -> None:
    with ResultStore(url) as store:
        runs = store.runs(study)
        assert len(runs) == points
        for run_ in runs:
            assert run_["state"] == "complete", run_
            assert run_["attempts"] == 1, run_  # claimed once, by one worker
            rows = store.epochs(run_["id"])
            assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
            assert all(r["trainings"] == 1 for r in rows)
    trials = optuna.load_study(study_name=study, storage=url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == len(complete) == points  # no duplicate trial in Optuna either
    assert len({t.user_attrs["run_key"] for t in complete}) == points


@pytest.mark.timeout(60)
def test_two_workers_that_saw_one_dead_worker_take_its_run_over_once(tmp_path: Path) -> None:
    """Both survivors of a kill read the dead worker's run before either claims it (CI's
    three-worker race, where the run ended at attempt 3): the first takes it over, the
    second's claim, decided on its older read, is refused; neither releases it."""
    opened = prepare_study(load_sweep(write_sweep(tmp_path, "dead", epochs=2, space="weight_decay = [0.1]")),
                           f"sqlite:///{tmp_path / 'sweeps.db'}")
    store = opened.store
    (row,) = store.runs("dead")
    dead = f"{socket.gethostname()}/{2**22 + 12345}/x"  # beyond pid_max: no such process
    assert store.claim_run(row["id"], worker=dead, host=socket.gethostname(), stale_after=20, max_attempts=3) == 1
    first, second = (Worker(opened, WorkerOptions(checkpoints=tmp_path / "checkpoints")) for _ in range(2))
    read_before, runs_before = second._candidates(), store.runs("dead")
    claimed = first._claim_next()
    assert claimed is not None and claimed.attempt == 2
    second._candidates = lambda: read_before  # its read came before the first's claim
    assert second._claim_next() is None
    store.runs = lambda name: runs_before
    second._release_interrupted()
    del store.runs
    taken = store.get_run(row["id"])
    assert (taken["state"], taken["worker"], taken["attempts"]) == ("running", first.id, 2)
    store.close()


@pytest.mark.timeout(60)
def test_a_dead_workers_shared_training_is_taken_over_whole(tmp_path: Path) -> None:
    """A worker killed while it trained an m sweep's group: the survivor that takes the
    lead over at once takes its member too, rather than training the lead's group
    without it and the member alone (from scratch) afterwards."""
    sweep = write_sweep(tmp_path, "group", epochs=2, space="ema_momentum = [0.9, 0.99]")
    opened = prepare_study(load_sweep(sweep), f"sqlite:///{tmp_path / 'sweeps.db'}")
    store = opened.store
    lead, member = store.runs("group")
    dead = f"{socket.gethostname()}/{2**22 + 12345}/x"  # beyond pid_max: no such process
    for row in (lead, member):
        store.claim_run(row["id"], worker=dead, host=socket.gethostname(), stale_after=20, max_attempts=3)
    folder = tmp_path / "checkpoints" / "group" / lead["run_key"]
    folder.mkdir(parents=True)
    (folder / GROUP_FILE).write_text(json.dumps({"members": [member["run_key"]]}), encoding="utf-8")
    survivor = Worker(opened, WorkerOptions(checkpoints=tmp_path / "checkpoints"))
    claim = survivor._claim_next()
    assert (claim.run["id"], claim.attempt, claim.taken_from) == (lead["id"], 2, dead)
    members = claim_group(store, "group", claim.run, folder, survivor._claim_member)
    assert [(row["id"], token) for row, token in members] == [(member["id"], 2)]
    assert store.get_run(member["id"])["worker"] == survivor.id
    store.close()


@pytest.mark.timeout(60)
def test_a_silent_hosts_shared_training_is_taken_over_whole(tmp_path: Path) -> None:
    """Another machine's worker fell silent while it trained a group; its member's last
    beat came a moment after the lead's, inside the grace period when the lead is taken
    over. The member goes with the lead: its holder is the one the lead was taken from."""
    sweep = write_sweep(tmp_path, "far", epochs=2, space="ema_momentum = [0.9, 0.99]")
    opened = prepare_study(load_sweep(sweep), f"sqlite:///{tmp_path / 'sweeps.db'}")
    store = opened.store
    lead, member = store.runs("far")
    silent = "far-away/4242/gone"
    for row, silent_for in ((lead, 60), (member, 1)):
        store.claim_run(row["id"], worker=silent, host="far-away", stale_after=20, max_attempts=3)
        with store.engine.begin() as connection:
            connection.execute(update(RUNS).where(RUNS.c.id == row["id"]).values(
                heartbeat_at=store.now() - timedelta(seconds=silent_for)))
    folder = tmp_path / "checkpoints" / "far" / lead["run_key"]
    folder.mkdir(parents=True)
    (folder / GROUP_FILE).write_text(json.dumps({"members": [member["run_key"]]}), encoding="utf-8")
    survivor = Worker(opened, WorkerOptions(checkpoints=tmp_path / "checkpoints"))
    survivor._takeovers_allowed = lambda: True  # the database has been reachable for a grace period
    claim = survivor._claim_next()
    assert (claim.run["id"], claim.attempt, claim.taken_from) == (lead["id"], 2, silent)
    # Not for a claim taken from another worker: the member's holder may be alive.
    assert survivor._claim_member(store.get_run(member["id"]), "elsewhere/1/other") is None
    members = claim_group(store, "far", claim.run, folder, lambda row: survivor._claim_member(row, claim.taken_from))
    assert [(row["id"], token) for row, token in members] == [(member["id"], 2)]
    store.close()


@pytest.mark.timeout(60)
def test_workers_that_start_together_do_not_split_a_shared_training(tmp_path: Path) -> None:
    """Two workers, an m sweep of two runs (one training): whether the second reads the
    study before or just after the first's claim, it leaves the whole group to it."""
    sweep = write_sweep(tmp_path, "pair", epochs=2, space="ema_momentum = [0.9, 0.99]")
    opened = prepare_study(load_sweep(sweep), f"sqlite:///{tmp_path / 'sweeps.db'}")
    lead, member = opened.store.runs("pair")
    first, second = (Worker(opened, WorkerOptions(checkpoints=tmp_path / "checkpoints")) for _ in range(2))
    read_before = second._candidates()
    assert [r["id"] for r in read_before] == [lead["id"]]  # one run stands for the training
    claim = first._claim_next()
    assert claim.run["id"] == lead["id"] and claim.taken_from is None
    assert second._candidates() == []  # read before the first claims the member: it waits
    second._candidates = lambda: read_before
    assert second._claim_next() is None
    members = claim_group(opened.store, "pair", claim.run, tmp_path / "checkpoints" / "pair" / lead["run_key"],
                          first._claim_member)
    assert [(row["id"], token) for row, token in members] == [(member["id"], 1)]
    opened.store.close()


@pytest.mark.long
@pytest.mark.timeout(600)
def test_three_workers_on_sqlite_train_each_point_once_and_take_over_a_killed_one(tmp_path: Path) -> None:
    """Three workers race for three points; one is killed (with its child) in its
    run's epoch 2, and a survivor continues that run from its checkpoint."""
    sweep = write_sweep(tmp_path, "three", epochs=4, space=THREE_POINTS)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url, "--workers", "3"], tmp_path)
    try:
        event = wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 2)
        with ResultStore(url) as store:
            victim = next(r for r in store.runs("three") if r["label"] == event["label"])
        worker_pid = int(victim["worker"].split("/")[1])
        os.kill(worker_pid, signal.SIGKILL)  # its child dies with it
        assert process.wait(timeout=400) == 0, process.stderr.read()
        outputs = (rest_of_stdout(process), process.stderr.read())
    finally:
        kill(process)
    with ResultStore(url) as store:
        runs = {r["label"]: {**r, "epochs": store.epochs(r["id"])} for r in store.runs("three")}
    assert len(runs) == 3 and all(r["state"] == "complete" for r in runs.values()), runs
    taken = runs.pop(event["label"])
    for run_ in runs.values():  # the others: claimed once, each epoch trained once
        assert run_["attempts"] == 1, run_
        assert [(e["epoch"], e["trainings"]) for e in run_["epochs"]] == [(n, 1) for n in range(1, 5)]
    assert taken["attempts"] == 2 and taken["worker"].split("/")[1] != str(worker_pid)
    assert [e["epoch"] for e in taken["epochs"]] == [1, 2, 3, 4]
    # From the checkpoint: epoch 1 was not trained again; epoch 2's row may have been
    # written just before its checkpoint when the kill came (the epoch in flight).
    assert taken["epochs"][0]["trainings"] == 1
    assert sum(e["trainings"] > 1 for e in taken["epochs"]) <= 1
    # In Optuna: a trial per run, and the killed attempt's, failed by the survivor.
    trials = optuna.load_study(study_name="three", storage=url).trials
    states = sorted((t.user_attrs["run_key"] == taken["run_key"], t.state.name) for t in trials)
    assert states == [(False, "COMPLETE"), (False, "COMPLETE"), (True, "COMPLETE"), (True, "FAIL")]
    assert _lock_errors(tmp_path, "three", *outputs) == []


def test_the_lock_check_reads_the_workers_logs(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "s" / "key").mkdir(parents=True)
    (tmp_path / "checkpoints" / "s" / "worker-0.log").write_text("sqlite3.OperationalError: database is locked\n")
    (tmp_path / "checkpoints" / "s" / "key" / "train.log").write_text("fine\n")
    assert len(_lock_errors(tmp_path, "s", "")) == 1


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_two_workers_on_postgresql_train_each_point_once(tmp_path: Path, postgres_url: str) -> None:
    sweep = write_sweep(tmp_path, "two_pg", epochs=1, space=TWO_POINTS, train_size=256)
    done = run(["run", str(sweep), "--storage", postgres_url, "--workers", "2",
                "--checkpoints", str(tmp_path / "checkpoints")], tmp_path)
    assert done.returncode == 0, done.stderr
    _check_exactly_once(postgres_url, "two_pg", 2, 1)
    assert _idle_children(tmp_path, "two_pg") == []


@pytest.mark.long
@pytest.mark.timeout(600)
def test_a_search_on_two_workers_completes_n_trials_and_retries_a_crash_with_its_params(tmp_path: Path) -> None:
    """A `[search]` of three trials spread over two workers, whose first child crashes
    as it is handed its run: that trial fails and its retry trains the params the
    sampler chose, and the study still ends with three complete trials, all different."""
    sweep = tmp_path / "search.toml"
    sweep.write_text(
        write_sweep(tmp_path, "base", epochs=1, space="", train_size=256).read_text()
        .replace('name = "base"', 'name = "search"') + dedent("""
            [study]
            max_retries = 1
            [search]
            sampler = "tpe"
            n_trials = 3
            seed = 1
            space.weight_decay = {low = 0.01, high = 0.3, log = true}
            space.learning_rate = {low = 5e-4, high = 3e-3, log = true}
        """),
        encoding="utf-8",
    )
    # The first child handed a run, by either worker, crashes as it reads it.
    crash = crashing_children(tmp_path, "once()")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path,
               extra_env=crash)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="search", storage=url).trials
    (failed,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 4 and len(complete) == 3
    assert len({(t.params["weight_decay"], t.params["learning_rate"]) for t in complete}) == 3
    assert set(failed.params) == {"weight_decay", "learning_rate"}
    (retry,) = [t for t in complete if t.params == failed.params]
    assert retry.distributions == failed.distributions
    with ResultStore(url) as store:
        runs = store.runs("search")
    assert len(runs) == 3 and all(r["state"] == "complete" for r in runs)
    (retried,) = [r for r in runs if r["attempts"] == 2]
    assert retried["config"]["weight_decay"] == pytest.approx(failed.params["weight_decay"])
    assert retried["config"]["learning_rate"] == pytest.approx(failed.params["learning_rate"])
