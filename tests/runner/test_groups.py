"""A shared training is claimed and retried as one (issue 19's groups): a worker that
meets a member claims its lead instead, and `sweep retry` on one run hands out again
every failed or stopped run of its training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from results.store.result_store import ResultStore
from sweep_runner.cli import main
from sweep_runner.groups import GROUP_FILE, claim_order, group_leads, one_claim_per_training, same_training


def _run(run_id: int, key: str, state: str = "stopped", attempts: int = 1, **config: float) -> dict:
    return {"id": run_id, "run_key": key, "label": key, "state": state, "attempts": attempts,
            "config": {"epochs": 2, **config}}


def test_a_member_gives_way_to_its_lead_when_the_lead_is_claimable() -> None:
    lead, m1, other, m2 = _run(1, "L"), _run(2, "M1"), _run(3, "X"), _run(4, "M2")
    leads = {"M1": "L", "M2": "L"}
    assert [r["run_key"] for r in claim_order([m1, other, lead, m2], leads)] == ["L", "X"]
    assert [r["run_key"] for r in claim_order([lead, m1, other, m2], leads)] == ["L", "X"]
    # The lead complete or trained by a live worker: the member trains alone.
    assert [r["run_key"] for r in claim_order([m1, other], leads)] == ["M1", "X"]
    assert claim_order([], leads) == []


def test_workers_see_one_never_claimed_run_per_training() -> None:
    """λ 0.1 × m {0.9, 0.99} and λ 0.2 × m {0.9, 0.99}, never claimed: a worker sees the
    first of each training (whoever claims it claims its sibling), none of a training
    whose group is forming, and every run of a training whose lead has an epoch."""
    fresh = [_run(i, f"R{i}", attempts=0, weight_decay=wd, ema_momentum=m)
             for i, (wd, m) in enumerate(((0.1, 0.9), (0.1, 0.99), (0.2, 0.9), (0.2, 0.99)), 1)]
    retried = _run(5, "R5", attempts=1, weight_decay=0.1, ema_momentum=0.5)  # claimed before: as before

    def keys(ready: list[dict], runs: list[dict], epochs: set[int] = frozenset()) -> list[str]:
        kept = one_claim_per_training(ready, runs, live=lambda r: r["state"] == "running",
                                      has_epochs=lambda run_id: run_id in epochs)
        return [r["run_key"] for r in kept]

    assert keys(fresh + [retried], fresh + [retried]) == ["R1", "R3", "R5"]
    # R1 was just claimed, its group not yet: its sibling waits, λ 0.2's first stays.
    lead = {**fresh[0], "state": "running", "attempts": 1}
    assert keys(fresh[1:], [lead, *fresh[1:]]) == ["R3"]
    # R1 has trained an epoch without R2 (added later): R2 trains anew, alone.
    assert keys(fresh[1:], [lead, *fresh[1:]], epochs={1}) == ["R2", "R3"]
    assert keys([], []) == []


def test_groups_are_read_from_their_leads_folders(tmp_path: Path) -> None:
    for folder, members in (("L", ["M1", "M2"]), ("K", ["N1"]), ("J.unstored-20261203T100000", ["Z"])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / GROUP_FILE).write_text(json.dumps({"members": members}))
    (tmp_path / "alone").mkdir()
    assert group_leads(tmp_path) == {"M1": "L", "M2": "L", "N1": "K"}
    assert group_leads(tmp_path / "no such study") == {}


def test_same_training_adds_the_failed_and_stopped_runs_of_the_chosen_ones_training() -> None:
    runs = [
        _run(1, "L", "failed", ema_momentum=0.5), _run(2, "M1", "failed", ema_momentum=0.9),
        _run(3, "M2", "stopped", ema_momentum=0.99), _run(4, "M3", "complete", ema_momentum=0.999),
        _run(5, "X", "failed", weight_decay=0.1),
    ]
    assert [r["run_key"] for r in same_training([runs[1]], runs)] == ["L", "M1", "M2"]
    assert [r["run_key"] for r in same_training([runs[4]], runs)] == ["X"]


@pytest.mark.timeout(60)
def test_retry_of_one_member_hands_out_its_whole_training(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    with ResultStore(url) as store:
        for label, config in (("1", {"ema_momentum": 0.5}), ("2", {"ema_momentum": 0.9}),
                              ("3", {"ema_momentum": 0.99}), ("4", {"weight_decay": 0.1})):
            run_id = store.register_run("s", f"key-{label}", label=label, comment=None, config={"epochs": 2, **config})
            store.claim_run(run_id, worker="w", host="h", stale_after=20, max_attempts=1)
            store.finish_run(run_id, "failed", failure_reason="crashed")
    assert main(["retry", "s", "--runs", "2", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "reset 3 run(s) (with the runs that share their training): 1, 2, 3;" in out
    with ResultStore(url) as store:
        assert [r["state"] for r in store.runs("s")] == ["stopped", "stopped", "stopped", "failed"]
