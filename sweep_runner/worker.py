"""A worker: claim a run, train it in a child process, record how it ended; repeat.

Workers share nothing but the database. A run is claimed with one atomic UPDATE on
its row, so that each run is trained to completion exactly once however many workers
start together; a run whose worker stopped beating is taken over from its checkpoint.

    python -m sweep_runner.worker STUDY --storage URL [--checkpoints DIR] …
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from results.store import INPUT_ERROR, LostClaim, RunState, Timing, is_claimable, is_dead_local, is_stale
from sweep_runner.child import (
    EXIT_DATABASE_AWAY,
    EXIT_DISK_FULL,
    EXIT_INPUT_ERROR,
    EXIT_LOST_CLAIM,
    ChildSpec,
    disk_full,
)
from sweep_runner import logs
from sweep_runner.children import Child, Children
from sweep_runner.outage import DatabaseAway, Outage, is_outage
from sweep_runner.outcome import Outcome
from sweep_runner.groups import claim_group, claim_order, group_leads, one_claim_per_training
from sweep_runner.pruning import pruner_settings
from trainer import EXIT_INTERRUPTED, Interrupts, checkpoint_owners
from sweep_runner.storage import quiet_optuna
from sweep_runner.study import OpenStudy, grid_trial, load_study, make_sampler, trial_attrs
from sweep_runner.slurm import current_task as slurm_task
from sweeps.config import RunConfig

POLL_SECONDS = 2.0
#: Candidates per claiming statement (three parameters each).
CLAIM_SLICE = 500
#: How often a worker looks whether its child has imported (and the signals it got).
AHEAD_POLL_SECONDS = 0.25
DISK_FULL = "disk full"

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    """How a worker runs.

    Args:
        checkpoints: the folder of checkpoint folders (`<checkpoints>/<study>/<run key>`).
        data_dir: where local datasets live.
        max_trials: stop after this many attempts (None: until the study is done).
        start_ahead: start the next run's child while the current run trains (once
            its child has imported), so that its imports (about 5.5 s on a CPU) are
            hidden.
    """

    checkpoints: Path
    data_dir: Path | None = None
    max_trials: int | None = None
    start_ahead: bool = True


class Claim(NamedTuple):
    """A run this worker claimed.

    Args:
        run: the run's row, as claimed.
        attempt: the claim's attempt number, the token its writes carry.
        taken_from: the worker whose stale claim this one took over, else None: its
            claims on the run's group members are as dead as the one on the run.
    """

    run: dict[str, Any]
    attempt: int
    taken_from: str | None = None


def worker_id() -> str:
    """`host/pid/token`: the host and pid tell a dead local worker at once."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def instance_token(run: dict[str, Any]) -> str:
    """The run's study instance: its row in this database (id and registration time).

    Written into every checkpoint and outcome of the run, so that a folder left by a
    deleted or replaced database (same study name, same run key) is never taken for
    this run's progress or outcome.
    """
    registered = run["registered"]
    stamp = registered.isoformat() if hasattr(registered, "isoformat") else str(registered)
    return hashlib.sha256(f"{run['id']}|{stamp}".encode()).hexdigest()[:16]


def adopt_folder(directory: Path, run_key: str, instance: str) -> Path | None:
    """Moves a run's folder aside when what it holds belongs to another study instance.

    Returns:
        Where the folder went, or None when it was this instance's (or empty).
    """
    # A folder with any file of the run's own is the run's: a stray file of another
    # run in it is set aside by `checkpoint.load`, the run's own checkpoints kept.
    owners = checkpoint_owners(directory)
    if not owners or (run_key, instance) in owners:
        return None
    found = sorted(owners, key=str)[0]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    aside = directory.with_name(f"{directory.name}.foreign-{stamp}")
    os.replace(directory, aside)
    log.warning(
        "checkpoint folder %s belongs to another database's study (instance %s, not %s): "
        "moved to %s; the run trains from epoch 1", directory, found[1] or "unknown", instance, aside,
    )
    return aside


def missing_epochs(epochs: list[dict[str, Any]], planned: int | None) -> list[int]:
    """The epochs 1..planned without a stored row."""
    stored = {row["epoch"] for row in epochs}
    return [epoch for epoch in range(1, (planned or 0) + 1) if epoch not in stored]


# `sweep status` tells dead workers apart by the same rules (results.store.lifecycle).
_is_dead_local = is_dead_local


class Worker:
    """Claims and trains the runs of one study until none is left.

    Args:
        opened: the study, its sweep and the results store.
        options: folders and limits.
    """

    def __init__(self, opened: OpenStudy, options: WorkerOptions) -> None:
        self.opened = opened
        self.options = options
        self.id = worker_id()
        self.host = socket.gethostname()
        self.max_attempts = opened.sweep.study.max_retries + 1
        self.child: subprocess.Popen | None = None
        self.children = Children(ahead=options.start_ahead)
        self.attempts = 0
        self.disk_full = False
        self.database_away = False
        self.timing = Timing.from_env()
        self.outage = Outage(self.timing.outage_limit, f"worker {self.id}")
        self.interrupts = Interrupts(on_first=self._forward, on_second=self._abort)

    # The loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Trains runs until none is claimable; returns the exit status."""
        self.interrupts.install()
        try:
            self._loop()
        except DatabaseAway as error:
            self.database_away = True
            log.error("%s: stopped training; its run is taken over once its claim expires", error)
        finally:
            self.children.close()
        if self.database_away:
            return 1
        if self.disk_full:
            log.error("stopped: the disk of %s is full; free space, then `sweep resume`", self.options.checkpoints)
            return 1
        return EXIT_INTERRUPTED if self.interrupts.stopping else 0

    def _loop(self) -> None:
        self.outage.call(self.opened.trials.fail_stale)
        self.outage.call(self._release_interrupted)
        while not self.interrupts.stopping and not self.disk_full and not self.database_away:
            if self._attempts_spent():
                break
            try:
                claimed = self._claim_next()
                self.outage.reached()
                if claimed is None:
                    if self._others_running():
                        time.sleep(POLL_SECONDS)  # they may die: then take their runs over
                        continue
                    break
            except Exception as error:
                if not is_outage(error):
                    raise
                self.outage.failed(error)
                self.outage.pause()
                continue
            self.attempts += 1
            self._attempt(claimed)

    def _attempts_spent(self) -> bool:
        return self.options.max_trials is not None and self.attempts >= self.options.max_trials

    def _may_claim_again(self) -> bool:
        """Whether another run is likely after this one: only then is a child started ahead."""
        if self._attempts_spent() or self.interrupts.stopping:
            return False
        try:
            return bool(self._candidates())
        except Exception as error:
            if not is_outage(error):
                raise
            self.outage.failed(error)  # the database is away: no child ahead for now
            return False

    def _is_stale(self, run: dict[str, Any], now: datetime) -> bool:
        return is_stale(run, now, self.timing.grace_period)

    def _takeovers_allowed(self) -> bool:
        """No run is taken over until the database has been reachable for a whole grace
        period (this worker's view, and the server's uptime): after an outage the
        runs' holders must get to beat first."""
        if self.outage.reachable_for() < self.timing.grace_period:
            return False
        uptime = self.opened.store.uptime()
        return uptime is None or uptime >= self.timing.grace_period

    def _release_interrupted(self) -> None:
        """Runs left "running" by workers that are gone (kill -9, a lost machine, a
        power cut) become "stopped": a new invocation continues them from their
        checkpoints whatever their retries, since being interrupted is not failing."""
        store = self.opened.store
        now = store.now()
        takeovers = None
        for run in store.runs(self.opened.name):
            if not self._is_stale(run, now):
                continue
            dead_local = _is_dead_local(run["worker"])
            if not dead_local:
                takeovers = self._takeovers_allowed() if takeovers is None else takeovers
                if not takeovers:
                    continue
            store.release_run(
                run["id"], stale_after=0.0 if dead_local else self.timing.grace_period,
                reason="interrupted: its worker stopped", attempt_seen=run["attempts"],
            )

    def _candidates(self) -> list[dict[str, Any]]:
        store = self.opened.store
        runs = store.runs(self.opened.name)
        now = store.now()
        ready = [r for r in runs if r["state"] != RunState.RUNNING
                 and is_claimable(r, now, self.max_attempts, grace_period=self.timing.grace_period)]
        if self.opened.sweep.search is None:  # a search's trials share no training
            ready = one_claim_per_training(
                ready, runs, has_epochs=lambda run_id: bool(store.epoch_attempts(run_id)),
                live=lambda r: r["state"] == RunState.RUNNING and not self._is_stale(r, now),
            )
        # A run whose worker died during this sweep is taken over, up to max_retries
        # (one of this machine's dead workers at once, another machine's once the
        # database has been reachable for a grace period).
        stale = [r for r in runs if self._is_stale(r, now)]
        if stale and not self._takeovers_allowed():
            stale = [r for r in stale if _is_dead_local(r["worker"])]
        return stale + ready

    def _claim_next(self) -> Claim | None:
        """The next run this worker claims, with the claim's attempt (its token).

        Runs of this machine's dead workers are taken one by one at once; the others in
        one statement that takes the first free one (`ResultStore.claim_first`), so that
        workers starting together do not race each other through the list.
        """
        store = self.opened.store
        leads = group_leads(self.options.checkpoints / self.opened.name)
        candidates = claim_order(self._candidates(), leads)
        dead_local = [r for r in candidates if r["state"] == RunState.RUNNING and _is_dead_local(r["worker"])]
        for run in dead_local:
            # Decided on what was read: only if no other worker took it over since.
            attempt = store.claim_run(
                run["id"], worker=self.id, host=self.host, stale_after=0.0, max_attempts=self.max_attempts,
                attempt_seen=run["attempts"],
            )
            if attempt is not None:
                return self._claimed(run, attempt)
        dead = {run["id"] for run in dead_local}
        by_id = {run["id"]: run for run in candidates if run["id"] not in dead}
        ids = list(by_id)
        # In slices: a statement's parameters stay few whatever the study's size.
        for start in range(0, len(ids), CLAIM_SLICE):
            claimed = store.claim_first(
                ids[start:start + CLAIM_SLICE], worker=self.id, host=self.host,
                stale_after=self.timing.grace_period, max_attempts=self.max_attempts,
            )
            if claimed is not None:
                return self._claimed(by_id[claimed[0]], claimed[1])
        return None

    def _claimed(self, seen: dict[str, Any], attempt: int) -> Claim:
        """The claim on the run read as `seen`: a takeover when it was running."""
        # The claim is made: a refused connection now is waited out, or this worker
        # would claim its own run again at once and spend an attempt.
        store, run_id = self.opened.store, seen["id"]
        # Each attempt names its Slurm task (NULL outside Slurm): `sweep status`.
        self.outage.call(lambda: store.set_slurm_job(run_id, self.id, slurm_task()))
        taken_from = seen["worker"] if seen["state"] == RunState.RUNNING and seen["worker"] != self.id else None
        return Claim(self.outage.call(lambda: store.get_run(run_id)), attempt, taken_from)

    def _claim_member(self, row: dict[str, Any], taken_from: str | None = None) -> int | None:
        """Claims a member of the claimed run's training: at once if its holder is dead
        (a dead worker of this machine, or the one whose claim on the lead was taken
        over: `taken_from`), else as any run, after its holder's grace period."""
        at_once = row["state"] == RunState.RUNNING and (
            _is_dead_local(row["worker"]) or (taken_from is not None and row["worker"] == taken_from)
        )
        return self.opened.store.claim_run(
            row["id"], worker=self.id, host=self.host, max_attempts=self.max_attempts,
            stale_after=0.0 if at_once else self.timing.grace_period, attempt_seen=row["attempts"],
        )

    def _others_running(self) -> bool:
        """Whether live workers still train runs (that may yet need taking over).

        A run under a dead worker that has no retries left does not count, or the
        worker would wait for it for ever; the next invocation continues it.
        """
        store = self.opened.store
        runs = store.runs(self.opened.name)
        now = store.now()
        if any(r["state"] == RunState.RUNNING and not self._is_stale(r, now) for r in runs):
            return True
        # Runs that wait out the grace period after an outage before they are taken over.
        return not self._takeovers_allowed() and any(
            self._is_stale(r, now) and r["attempts"] < self.max_attempts for r in runs
        )

    # One attempt --------------------------------------------------------------------

    def _attempt(self, claim: Claim) -> None:
        """Trains one claimed run; every write for it carries the claim's `attempt`."""
        store = self.opened.store
        run, attempt = claim.run, claim.attempt
        # Runs of the same training (`sweep_runner.groups`): claimed with it, trained once.
        members = self.outage.call(lambda: claim_group(
            store, self.opened.name, run, self.options.checkpoints / self.opened.name / run["run_key"],
            lambda row: self._claim_member(row, claim.taken_from),
        )) if self.opened.sweep.search is None else []
        claimed = [(row, token) for row, token in members if token]
        # Beating from the claim on: opening the trials takes a dozen transactions,
        # seconds each on a saturated server, and a claim that does not beat meanwhile
        # looks stale to the other workers (benchmarks/scale.py at 200 workers).
        beats = [_Heartbeat(self, row["id"], None, token) for row, token in [(run, attempt)] + claimed]
        for beat in beats:
            beat.start()
        outcome: Outcome | None = None
        try:
            opened = self._open_trials([(run, attempt)] + claimed, beats)
            if opened is not None and not any(beat.lost or beat.away for beat in beats):
                (run, trial_id, _), member_trials = opened[0], {row["id"]: t for row, t, _ in opened[1:]}
                outcome = self._train(run, trial_id, attempt, [
                    {"run_id": row["id"] if token else None, "trial_id": member_trials.get(row["id"]),
                     "attempt": token or None, "config": row["config"]}
                    for row, token in members
                ])
        finally:
            for beat in beats:
                beat.stop()
        if any(beat.away for beat in beats):
            raise DatabaseAway(f"run {run['label']}: the database stayed unreachable past the outage limit")
        if any(beat.lost for beat in beats) or (outcome is not None and outcome.failure_kind == "lost_claim"):
            # Another worker took a run over; it records the outcome.
            log.warning("run %s: attempt %d lost its claim (taken over by another worker): its child "
                        "stopped and wrote nothing more for the run", run["label"], attempt)
            return
        if opened is None or outcome is None:  # could not start: said and recorded
            return
        for row, t, token in opened:
            try:
                self._record(row, t, self._verify(row, outcome, token), token)
            except LostClaim as error:
                log.warning("run %s: %s; its outcome is left to the attempt that holds it", row["label"], error)

    def _open_trials(
        self, claims: list[tuple[dict[str, Any], int]], beats: list[_Heartbeat]
    ) -> list[tuple[dict[str, Any], int, int]] | None:
        """Each claimed run's Optuna trial, with its heartbeat told the trial: (run, its
        trial, its claim's attempt); None when they could not be opened (the runs failed).

        A database that is away (or refuses connections at its limit) is waited for, the
        claims beating meanwhile: giving them up made each run wait out its grace period
        and spend an attempt (200 simulated workers). A retry after a half-made trial
        leaves that trial behind, RUNNING without beats, for Optuna to fail as stale.

        Raises:
            DatabaseAway: it stayed away past the outage limit.
        """
        opened: list[tuple[dict[str, Any], int, int]] = []
        try:
            for (row, token), beat in zip(claims, beats, strict=True):
                trial_id, row = self.outage.call(lambda row=row: self._open_trial(row))
                beat.trial_id = trial_id
                opened.append((row, trial_id, token))
        except DatabaseAway:
            raise
        except Exception as error:  # a sampler or storage error fails this attempt only
            log.exception("run %s: could not start", claims[0][0]["label"])
            for row, token in claims:
                try:
                    self.outage.call(lambda row=row, token=token: self.opened.store.finish_run(
                        row["id"], RunState.FAILED, failure_reason=f"could not start: {error}", attempt=token
                    ))
                except LostClaim as lost:
                    log.warning("%s", lost)
            return None
        return opened

    def _verify(self, run: dict[str, Any], outcome: Outcome, attempt: int) -> Outcome:
        """The outcome as the store may take it: a run is complete only with every epoch
        stored; a full disk stops the run (and this worker) without spending a retry;
        an input error fails it for good."""
        if outcome.failure_kind == "disk_full":
            self.disk_full = True
            return outcome.model_copy(update={"status": "stopped"})
        if outcome.failure_kind == "input":
            return outcome.model_copy(update={"failure_reason": INPUT_ERROR + (outcome.failure_reason or "")})
        if outcome.status != "completed":
            return outcome
        missing = missing_epochs(
            self.outage.call(lambda: self.opened.store.epochs(run["id"])), run["config"].get("epochs")
        )
        if not missing:
            return outcome
        if not self.outage.call(lambda: self.opened.store.holds(run["id"], attempt)):
            raise LostClaim(run["id"], attempt)  # the folder is another attempt's now
        directory = self.options.checkpoints / self.opened.name / run["run_key"]
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = directory.with_name(f"{directory.name}.unstored-{stamp}")
        if directory.exists():  # a group's member has no folder of its own
            os.replace(directory, aside)
        shown = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
        return outcome.model_copy(update={
            "status": "failed",
            "failure_reason": f"its folder says complete, but epochs {shown} are not in the database: "
                              f"moved to {aside.name}; the next attempt trains it again",
        })

    def _open_trial(self, run: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The Optuna trial of this attempt: the run's WAITING trial, else a new one."""
        trials, store = self.opened.trials, self.opened.store
        if not run["config"]:  # a search slot: ask the sampler
            return self._ask(run)
        attrs = trial_attrs(run["label"], run["run_key"], run["comment"], run["attempts"])
        if run["trial_number"] is not None:
            trial_id = trials.take_over(
                run["trial_number"], run["attempts"], "its worker stopped; continued in a new attempt"
            )
            if trial_id is not None:
                return trial_id, run
        if self.opened.sweep.search is None:
            params, distributions, attrs = grid_trial(self.opened, run["config"], attrs)
        else:  # a search trial's retry keeps what the sampler chose
            params, distributions = _previous_params(self.opened, run)
            attrs["schedule"] = RunConfig.model_validate(run["config"]).schedule_notation()
        trial_id, number = trials.add(TrialState.RUNNING, params, distributions, attrs)
        # The curve so far, so that the dashboard shows the whole run in its last attempt.
        trials.copy_curve(trial_id, [
            (row["epoch"], row["val_acc"]) for row in store.epochs(run["id"]) if row["val_acc"] is not None
        ])
        store.set_trial_number(run["id"], number)
        return trial_id, store.get_run(run["id"])

    def _ask(self, run: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        sweep, study, store = self.opened.sweep, self.opened.study, self.opened.store
        assert sweep.search is not None
        number = int(run["label"].lstrip("#"))
        study.sampler = make_sampler(sweep, slot=number)
        trial = study.ask()
        params: dict[str, Any] = {}
        for key, choice in sweep.search.space.items():
            if choice.choices is not None:
                labels = choice_labels(choice.choices)
                params[key] = choice.choices[labels.index(trial.suggest_categorical(key, labels))]
            elif _is_integer_setting(key) and choice.step is None:
                params[key] = trial.suggest_int(key, int(choice.low), int(choice.high), log=choice.log)
            else:
                params[key] = trial.suggest_float(key, choice.low, choice.high, log=choice.log, step=choice.step)
        resolved = sweep.resolve(params, number)
        config = resolved.config.model_dump(mode="json")
        label = f"{number}"
        for key, value in trial_attrs(label, run["run_key"], None, run["attempts"]).items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("schedule", resolved.config.schedule_notation())
        store.update_run(run["id"], label=label, config=config)
        store.set_trial_number(run["id"], trial.number)
        return self.opened.trials.trial_id(trial.number), store.get_run(run["id"])

    def _train(
        self, run: dict[str, Any], trial_id: int, attempt: int, members: list[dict[str, Any]] | None = None
    ) -> Outcome:
        """Runs the child (for the run, and the `members` of its group); its outcome,
        or why it died."""
        sweep = self.opened.sweep
        checkpoint_dir = self.options.checkpoints / self.opened.name / run["run_key"]
        instance = instance_token(run)
        # Beside the checkpoints, not in /tmp: a worker killed with SIGKILL leaves
        # nothing behind that the run's next attempt does not overwrite. One per
        # attempt: a child whose run was taken over never hands its outcome to the
        # attempt that took it.
        outcome_path = checkpoint_dir / f"outcome-{attempt}.json"
        log_path = checkpoint_dir / "train.log"
        spec = ChildSpec(
            url=str(self.opened.url), study=self.opened.name, run_id=run["id"], trial_id=trial_id,
            config=run["config"], checkpoint_dir=str(checkpoint_dir),
            data_dir=str(self.options.data_dir) if self.options.data_dir else None,
            outcome_path=str(outcome_path), log_path=str(log_path),
            report=len(sweep.study.objectives) == 1,
            pruner=pruner_settings(sweep.study),
            instance=instance,
            attempt=attempt,
            outage_limit=self.timing.outage_limit,
            members=members or [],
        )
        try:
            if checkpoint_dir.exists():
                adopt_folder(checkpoint_dir, run["run_key"], instance)
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            outcome_path.unlink(missing_ok=True)
            stream = open(log_path, "ab")
        except OSError as error:
            if not disk_full(error, self.options.checkpoints):
                raise
            return Outcome.failed(f"{DISK_FULL}: cannot write {error.filename or checkpoint_dir}", "disk_full")
        with stream:
            if self.interrupts.stopping:  # pressed while the run was being claimed
                return Outcome(status="stopped", failure_reason="interrupted before it started")
            child = self.children.take()
            self.child = child.process
            child.hand(spec)
            self._start_next_child_once_imported(child)
            returncode = child.wait(stream)
            self.child = None
        try:
            outcome = Outcome.model_validate_json(outcome_path.read_text(encoding="utf-8"))
            outcome_path.unlink()
            return outcome
        except (OSError, ValidationError):  # none, or cut short by a full disk
            outcome_path.unlink(missing_ok=True)
        if returncode == EXIT_INTERRUPTED or self.interrupts.stopping:
            # Ctrl-C (or SIGTERM) at any moment, the child's imports included, stops
            # the run: it continues later and spends no retry.
            return Outcome(status="stopped", failure_reason="interrupted (Ctrl-C or SIGTERM)")
        if returncode == EXIT_LOST_CLAIM:
            return Outcome.failed("lost its claim", "lost_claim")
        if returncode == EXIT_DATABASE_AWAY:
            raise DatabaseAway(f"run {run['label']}: the database stayed unreachable past the outage limit")
        return death_outcome(returncode, log_path)

    def _start_next_child_once_imported(self, child: Child) -> None:
        """Starts the next run's child once this run's child has imported (at once if
        it was started ahead), if another run is likely then; returns when it is
        started, not due, or this child has ended.

        Not before: the workers of one sweep start together, and until the others have
        claimed their runs every worker would see a run left for it and start a child
        that never gets one; and two imports would compete for the CPU. After, the
        next child imports while this run trains.
        """
        if not self.children.ahead:
            return
        while not self.interrupts.stopping and child.process.poll() is None:
            if child.wait_imported(timeout=AHEAD_POLL_SECONDS):
                if child.process.poll() is None and self._may_claim_again():
                    self.children.prepare()
                return

    def _record(self, run: dict[str, Any], trial_id: int, outcome: Outcome, attempt: int) -> None:
        """The outcome in the store first (fenced by the claim), then in Optuna: a
        writer that lost the run tells Optuna nothing, and a kill between the two
        leaves Optuna's trial stale, never a finished run to be trained again. Both
        wait for a database that is away (up to the outage limit).

        Raises:
            LostClaim: the claim no longer holds the run.
        """
        store = self.opened.store
        status = RunState.of_outcome(outcome.status)
        self.outage.call(lambda: store.finish_run(
            run["id"], status, failure_reason=outcome.failure_reason,
            device=(outcome.versions or {}).get("device"), versions=outcome.versions,
            attempt=attempt,
        ))
        self.outage.call(lambda: self._tell(run, trial_id, status, outcome))

    def _tell(self, run: dict[str, Any], trial_id: int, status: str, outcome: Outcome) -> None:
        """The run's outcome into its Optuna trial (a trial told already is left as it
        is, so that a retry after a lost connection changes nothing)."""
        store, trials = self.opened.store, self.opened.trials
        if status == RunState.COMPLETE:
            epochs = store.epochs(run["id"])
            reached = threshold_epoch(epochs, self.opened.sweep.report.threshold)
            # The attribute is empty for a run that never reached the threshold; the
            # second objective stays a number (epochs + 1), as Optuna requires.
            trials.tell(
                trial_id, values=objective_values(epochs, self.opened.sweep)[: len(self.opened.sweep.study.objectives)],
                user_attrs={"threshold_epoch": reached} if reached is not None else None,
            )
        elif status == RunState.PRUNED:
            trials.tell(trial_id, state=TrialState.PRUNED)
        else:
            reason = outcome.failure_reason or ("interrupted" if status == RunState.STOPPED else status)
            trials.tell(trial_id, state=TrialState.FAIL, user_attrs={"failure": reason})

    # Signals ----------------------------------------------------------------------

    def _forward(self) -> None:
        self.children.signal_spare()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)

    def _abort(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
        os._exit(EXIT_INTERRUPTED)


def threshold_epoch(epochs: list[dict[str, Any]], threshold: float) -> int | None:
    """The threshold epoch of stored epochs by the tables' one rule (its tolerance
    included); None when none reached it."""
    from results.report import threshold_epoch as first_epoch_at  # numpy only: no pandas here

    return first_epoch_at([e["epoch"] for e in epochs], [e["val_acc"] for e in epochs], threshold)


def objective_values(epochs: list[dict[str, Any]], sweep: Any) -> list[float]:
    """[best val_acc, threshold epoch]; the threshold epoch of a run that never reached
    it counts as one past its last epoch, so a minimising objective ranks it last."""
    best = max((e["val_acc"] for e in epochs if e["val_acc"] is not None), default=0.0)
    reached = threshold_epoch(epochs, sweep.report.threshold)
    return [best, float(reached) if reached is not None else float(len(epochs) + 1)]


def choice_labels(choices: list[Any]) -> list[Any]:
    """What Optuna suggests for `choices`: one distinct label per choice, mapped back by
    position, so that a choice (a schedule in the post's notation, a table) is never
    decoded from its label.

    A number, string, bool or None is its own label (the dashboard shows the values);
    a list or a table is its JSON text. Labels that would compare equal (1 and 1.0 and
    true, or a string "[1, 2]" and the list [1, 2]) are numbered instead.

    Args:
        choices: the `{choices = [...]}` of one key of `[search.space]`.
    """
    labels = [c if c is None or isinstance(c, (str, int, float)) else json.dumps(c) for c in choices]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    return labels


def _is_integer_setting(key: str) -> bool:
    default = RunConfig.model_fields[key].default
    return isinstance(default, int) and not isinstance(default, bool)


def _previous_params(opened: OpenStudy, run: dict[str, Any]) -> tuple[dict, dict]:
    """The params and distributions of the run's previous trial."""
    if run["trial_number"] is None:
        return {}, {}
    previous = opened.trials.frozen(run["trial_number"])
    return previous.params, previous.distributions


def death_outcome(returncode: int, log_path: Path) -> Outcome:
    """The outcome of a child that wrote none: why it died, in one whole line.

    A full disk is named as such, whatever it made the child die of (an exception, or
    a native library that crashed on a short write).
    """
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    if (returncode == EXIT_DISK_FULL or any("No space left on device" in line for line in lines[-50:])
            or (returncode != 0 and disk_full(None, log_path.parent))):
        cause = next((line for line in reversed(lines) if "No space left on device" in line), "")
        reason = cause if cause.startswith(DISK_FULL) else (  # the child's own line says it all
            f"{DISK_FULL} (No space left on device)" + (f": {cause}" if cause else ""))
        return Outcome.failed(reason, "disk_full")
    if returncode == EXIT_INPUT_ERROR and lines:
        return Outcome.failed(lines[-1], "input")
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        why = f"child process killed by {name}{hint}"
    else:
        why = f"child process exited with status {returncode}"
    return Outcome.failed(f"{why}: {lines[-1]}" if lines else why)


class _Heartbeat:
    """Beats for the run (results store) from its claim on, and for its trial (Optuna)
    once `trial_id` is set, at the claim's attempt; waits out a database that is away,
    up to the outage limit."""

    def __init__(self, worker: Worker, run_id: int, trial_id: int | None, attempt: int) -> None:
        self.worker, self.run_id, self.trial_id, self.attempt = worker, run_id, trial_id, attempt
        self.lost = False
        self.away = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        store = self.worker.opened.store
        trials = self.worker.opened.trials
        outage = self.worker.outage
        # The claim itself beat: the first beat one interval after it.
        interval = self.worker.timing.heartbeat_interval
        try:
            while not self._stop.wait(interval):
                try:
                    if not store.heartbeat(self.run_id, self.worker.id, self.attempt):
                        log.warning("run %d: attempt %d taken over by another worker; its child is stopped",
                                    self.run_id, self.attempt)
                        self._stop_child()
                        return
                    outage.reached()
                    if self.trial_id is not None:  # set once the trial is open
                        trials.heartbeat(self.trial_id)
                except (OperationalError, StorageInternalError) as error:
                    if not is_outage(error):
                        # A passing lock: the next beat retries, well within the grace period.
                        log.warning("run %d: heartbeat failed, retrying: %s", self.run_id, error)
                        continue
                    outage.failed(error)
                    if outage.past_limit:
                        log.error("run %d: the database has been unreachable for more than %g s: the "
                                  "child is stopped; the run is taken over once its claim expires",
                                  self.run_id, outage.limit)
                        self.away = True
                        self._stop_child()
                        return
        except BaseException:
            # Without beats another worker would take the run over while this child
            # trains on: stop it, as if the run were taken over.
            log.exception("run %d: heartbeat stopped; its child is stopped", self.run_id)
            self._stop_child()
            raise

    def _stop_child(self) -> None:
        self.lost = not self.away  # presumed dead and taken over: never train twice
        child = self.worker.child
        if child is not None and child.poll() is None:
            child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweep-worker")
    parser.add_argument("study")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-trials", type=int, default=None)
    parser.add_argument("--no-start-ahead", dest="start_ahead", action="store_false")
    parser.add_argument("--log-format", choices=["plain", "jsonl"], default="plain")
    args = parser.parse_args(argv)
    logs.configure(args.log_format)
    quiet_optuna()
    # Started by `sweep run`/`worker` or a scheduler: a database that is away is waited for.
    opened = Outage(Timing.from_env().outage_limit, "worker").call(lambda: load_study(args.study, args.storage))
    options = WorkerOptions(
        checkpoints=Path(args.checkpoints),
        data_dir=Path(args.data_dir) if args.data_dir else None,
        max_trials=args.max_trials,
        start_ahead=args.start_ahead,
    )
    return Worker(opened, options).run()


if __name__ == "__main__":
    sys.exit(main())
