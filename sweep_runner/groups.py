"""Runs that share one training: same training key, different measurement-only settings.

Training does not depend on m (with `ema_overwrite_frequency` unset), `evaluate_ema`
or `bn_subset_size` (`RunConfig.training_key` leaves them out), so an m sweep would
train identical models. A worker that claims such a run also claims its siblings
that have not started (no epoch stored) and hands the whole group to one child, which
trains once, keeps one average per m and records each run's epochs under its own row
and Optuna trial (`trainer.train`'s `members`).

The group is the lead run's: its checkpoint folder (named by its run key, as any run's)
holds the group's checkpoints, and `group.json` there lists the members' run keys in
order, so that an interrupted group resumes as one: whoever claims the lead again
claims the members it can; one it cannot claim keeps its average in the group (the
checkpoint has it) without being recorded. The members' run keys and folders are
those they would have alone. A value of m added after its group started trains anew.

A group is claimed as one: workers that start together see one never-claimed run per
training (`one_claim_per_training`), a worker that finds a member among the runs it
may claim claims the member's lead instead (`claim_order`), and `sweep retry` on one
run hands out again every failed or stopped run of its training (`same_training`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results.store import FINAL_STATES, RunState
from sweeps.config import training_key_of

log = logging.getLogger(__name__)

GROUP_FILE = "group.json"


def training_key(run: dict[str, Any]) -> str | None:
    """The run's training key; None for a search slot not yet sampled."""
    return training_key_of(run["config"])


def recorded_members(directory: Path) -> list[str] | None:
    """The run keys of the group whose lead's folder this is, else None."""
    try:
        return list(json.loads((directory / GROUP_FILE).read_text(encoding="utf-8"))["members"])
    except FileNotFoundError:
        return None


def claim_group(
    store: Any, study: str, lead: dict[str, Any], directory: Path, claim: Callable[[dict[str, Any]], int | None]
) -> list[tuple[dict[str, Any], int | None]]:
    """The members of `lead`'s training, each with this worker's claim on it (the
    attempt, the claim's token), or None where it did not claim it.

    A group recorded in `directory` is claimed again as it was; otherwise, for a lead
    that has not started, every not-started sibling with its training key that
    `claim` takes joins, and the group is recorded.

    Args:
        store: the results store.
        study: the study's name.
        lead: the run this worker claimed.
        directory: the lead's checkpoint folder.
        claim: claims one run for this worker (the store's conditional UPDATE).
    """
    key = training_key(lead)
    if key is None:
        return []
    recorded = recorded_members(directory)
    if recorded is not None:
        ids = [store.run_id(study, run_key) for run_key in recorded]
        if None in ids:  # another database's folder: moved aside before training
            return []
        rows = [store.get_run(run_id) for run_id in ids]
        return [(row, claim(row) if row["state"] not in FINAL_STATES else None) for row in rows]
    if store.epochs(lead["id"]) or (directory / "checkpoint.npz").exists():
        return []  # it trained alone so far: it goes on alone
    siblings = [
        row for row in store.runs(study)
        if row["id"] != lead["id"] and row["state"] not in FINAL_STATES and row["state"] != RunState.RUNNING
        and row["config"] and training_key(row) == key and not store.epochs(row["id"])
    ]
    members = [(row, token) for row in siblings if (token := claim(row))]
    if members:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / GROUP_FILE).write_text(
            json.dumps({"members": [row["run_key"] for row, _ in members]}), encoding="utf-8"
        )
        log.info("run %s trains for %d more runs of the same training", lead["label"], len(members))
    return members


def group_leads(study_dir: Path) -> dict[str, str]:
    """Every recorded group under a study's checkpoint folder: member run key → lead run
    key. Folders set aside (`<run key>.unstored-…`) hold no group."""
    leads: dict[str, str] = {}
    for path in sorted(study_dir.glob(f"*/{GROUP_FILE}")):
        if "." in path.parent.name:  # set aside: its runs train anew
            continue
        for member in recorded_members(path.parent) or ():
            leads[member] = path.parent.name
    return leads


def claim_order(candidates: list[dict[str, Any]], leads: dict[str, str]) -> list[dict[str, Any]]:
    """The runs to try to claim, in order: a member of a recorded group whose lead is
    itself a candidate gives way to the lead (claiming the lead claims the group), so
    that two workers never split a group that resumes. A member whose lead is not a
    candidate (complete, or trained by a live worker) stays: it trains alone.

    Args:
        candidates: the claimable runs, in the order the worker tries them.
        leads: `group_leads` of the study.
    """
    by_key = {run["run_key"]: run for run in candidates}
    ordered: list[dict[str, Any]] = []
    for run in candidates:
        lead = by_key.get(leads.get(run["run_key"], ""), run)
        if all(lead["id"] != seen["id"] for seen in ordered):
            ordered.append(lead)
    return ordered


def one_claim_per_training(
    ready: list[dict[str, Any]], runs: list[dict[str, Any]], *,
    live: Callable[[dict[str, Any]], bool], has_epochs: Callable[[int], bool],
) -> list[dict[str, Any]]:
    """The claimable runs less those another claim takes with its group, so that
    workers that start together do not split one training between them.

    Of the never-claimed runs of one training key only the first stays: whoever claims
    it claims the others with it (`claim_group`). None stays while a live run of that
    key has no epoch yet: its group is forming, and a claim now would take a run it is
    about to claim. Once that run has an epoch, a sibling left out (added to the sweep
    later) trains anew, alone.

    Args:
        ready: the claimable runs that are not running, in the order they are tried.
        runs: all of the study's runs.
        live: whether a run is running under a live claim.
        has_epochs: whether the run of that id has an epoch stored.
    """
    fresh = {run["id"]: key for run in ready if run["attempts"] == 0 and (key := training_key(run)) is not None}
    keys = set(fresh.values())
    forming = {
        key for run in runs
        if live(run) and (key := training_key(run)) in keys and not has_epochs(run["id"])
    }
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for run in ready:
        key = fresh.get(run["id"])
        if key is not None and (key in forming or key in seen):
            continue
        if key is not None:
            seen.add(key)
        kept.append(run)
    return kept


def same_training(chosen: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`chosen` and every failed or stopped run that shares a training with one of them,
    in the study's order: `sweep retry` hands a group out again as one.

    Args:
        chosen: the runs a person named.
        runs: all of the study's runs.
    """
    keys = {key for run in chosen if (key := training_key(run)) is not None}
    ids = {run["id"] for run in chosen}
    return [
        run for run in runs
        if run["id"] in ids
        or (run["state"] in (RunState.FAILED, RunState.STOPPED) and run["config"] and training_key(run) in keys)
    ]
