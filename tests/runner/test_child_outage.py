"""The child's own Optuna calls wait out a server at its connection limit: the attempt
trains on instead of dying and spending one of the run's attempts (issue 18's
200-worker simulation found children that died making their `Trial`). The long
connection-limit test meets the limit elsewhere; these meet it exactly here."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from sqlalchemy.exc import OperationalError

import trainer
from results.store import OptunaStudy, ResultStore
from sweep_runner import outage as outage_module
from sweep_runner.child import ChildSpec, train_attempt
from sweep_runner.storage import optuna_storage
from sweeps.config import RunConfig
from trainer.interrupts import Interrupts
from trainer.records import EpochRecord, TrainResult

EPOCHS = 2


def _refused() -> OperationalError:
    return OperationalError("connect", {}, Exception("FATAL: sorry, too many clients already"))


def _trained(config, on_epoch, checkpoint_dir, *, on_member_epoch, members, **kwargs) -> TrainResult:  # noqa: ANN001
    """Two epochs handed over as the trainer hands them, for the run and each member of
    its group, without training."""
    for epoch in range(1, EPOCHS + 1):
        record = EpochRecord(epoch=epoch, loss=1.0 / epoch, acc=0.5, val_loss=1.0, val_acc=0.4 + 0.1 * epoch,
                             lr=1e-3, seconds=1.0, images_per_second=100.0)
        on_epoch(record)
        for index in range(len(members)):
            on_member_epoch(index, record)
    return TrainResult(status="completed", epochs_completed=EPOCHS)


def _claimed_group(tmp_path: Path) -> tuple[ChildSpec, ResultStore]:
    """Two runs of one training (m 0.9 and 0.99) claimed by worker w, each with the
    RUNNING trial its worker opened for it: the first leads, the second is its member."""
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = ResultStore(url)
    study = OptunaStudy.create(optuna_storage(url), "s", ["val_acc"], ["maximize"])
    claimed = []
    for ema_momentum in (0.9, 0.99):
        config = RunConfig(dataset="digits", depth=11, epochs=EPOCHS, ema_momentum=ema_momentum).model_dump(mode="json")
        run_id = store.register_run("s", f"m{ema_momentum}", label=f"m={ema_momentum}", comment=None, config=config)
        attempt = store.claim_run(run_id, worker="w", host="h", stale_after=60.0, max_attempts=3)
        trial_id, _ = study.add(optuna.trial.TrialState.RUNNING, {}, {}, {})
        claimed.append({"run_id": run_id, "trial_id": trial_id, "attempt": attempt, "config": config})
    lead, member = claimed
    spec = ChildSpec(
        url=url, study="s", run_id=lead["run_id"], trial_id=lead["trial_id"], config=lead["config"],
        checkpoint_dir=str(tmp_path / "checkpoints"), data_dir=None, outcome_path=str(tmp_path / "outcome.json"),
        log_path=str(tmp_path / "train.log"), attempt=lead["attempt"], members=[member],
    )
    return spec, store


@pytest.mark.timeout(60)
def test_refused_connections_while_the_child_opens_its_trials_are_waited_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outage_module, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(trainer, "train", _trained)
    spec, store = _claimed_group(tmp_path)
    member = spec.members[0]
    # The lead's `Trial` is refused twice as the child starts; the member's once, when
    # its first epoch is reported.
    refusals = {spec.trial_id: [_refused(), _refused()], member["trial_id"]: [_refused()]}
    handle = OptunaStudy.handle

    def refusing_handle(self: OptunaStudy, trial_id: int) -> optuna.trial.Trial:
        if refusals[trial_id]:
            raise refusals[trial_id].pop()
        return handle(self, trial_id)

    monkeypatch.setattr(OptunaStudy, "handle", refusing_handle)
    assert train_attempt(spec, Interrupts()) == 0
    assert refusals == {spec.trial_id: [], member["trial_id"]: []}  # every refusal met and waited out
    for run_id in (spec.run_id, member["run_id"]):
        assert [row["epoch"] for row in store.epochs(run_id)] == [1, 2]
    for trial in optuna.load_study(study_name="s", storage=spec.url).trials:
        assert trial.intermediate_values == {1: pytest.approx(0.5), 2: pytest.approx(0.6)}
    store.close()


@pytest.mark.timeout(60)
def test_a_bug_in_the_same_place_is_no_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer, "train", _trained)

    def broken_handle(self: OptunaStudy, trial_id: int) -> optuna.trial.Trial:
        raise KeyError("a bug")

    monkeypatch.setattr(OptunaStudy, "handle", broken_handle)
    spec, store = _claimed_group(tmp_path)
    with pytest.raises(KeyError):
        train_attempt(spec, Interrupts())
    assert store.epochs(spec.run_id) == []
    store.close()
