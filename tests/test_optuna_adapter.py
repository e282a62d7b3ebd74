"""One module talks to Optuna's storage: `results.store.optuna_study`. Checked on the
source of every package and benchmark, calls inside functions too."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
ADAPTER = REPO / "results" / "store" / "optuna_study.py"
PACKAGES = ("sweeps", "trainer", "sweep_runner", "results", "benchmarks")


def storage_methods() -> set[str]:
    """The names of the methods of Optuna's storages and their heartbeat (`BaseStorage`
    says users should not call them), and the RDB storage's session."""
    heartbeat = {"record_heartbeat", "get_heartbeat_interval", "get_failed_trial_callback"}
    assert heartbeat <= set(dir(optuna.storages.RDBStorage))
    base = inspect.getmembers(optuna.storages.BaseStorage, inspect.isfunction)
    return {name for name, _ in base if not name.startswith("__")} | heartbeat | {"remove_session"}


def storage_uses(path: Path, methods: set[str]) -> list[str]:
    """`line: what` for each call of a storage method, each storage made, and each
    `_storage` read in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
            found.append(f"{node.lineno}: .{node.func.attr}()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "RDBStorage":
            found.append(f"{node.lineno}: RDBStorage()")
        elif isinstance(node, ast.Attribute) and node.attr == "_storage":
            found.append(f"{node.lineno}: _storage")
    return found


def test_the_methods_scanned_for_are_optunas_storage_verbs() -> None:
    methods = storage_methods()
    assert {"create_new_trial", "set_trial_user_attr", "get_trial", "get_all_studies",
            "set_trial_intermediate_value", "record_heartbeat", "remove_session"} <= methods
    # Names our own objects use for something else must not be among them.
    assert not {"get_run", "runs", "set_user_attr", "tell", "ask", "load"} & methods


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_adapter_calls_optunas_storage(package: str) -> None:
    methods = storage_methods()
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    uses = {str(path.relative_to(REPO)): storage_uses(path, methods) for path in files if path != ADAPTER}
    assert {path: found for path, found in uses.items() if found} == {}


def test_the_scan_sees_a_storage_call_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f(s, study):\n    s.set_trial_user_attr(1, 'k', 2)\n    return study._storage\n"
        "import optuna\nstorage = optuna.storages.RDBStorage('sqlite://')\n"
    )
    assert sorted(storage_uses(module, storage_methods())) == [
        "2: .set_trial_user_attr()", "3: _storage", "5: RDBStorage()",
    ]


def test_the_adapter_does_call_the_storage() -> None:
    # The scan would pass vacuously if it could not see the adapter's own calls.
    assert len(storage_uses(ADAPTER, storage_methods())) >= 5


def test_the_adapter_starts_reports_prunes_and_finishes_another_process_trials(tmp_path: Path) -> None:
    """The worker's and the child's verbs, on two storages as in two processes: a WAITING
    grid point taken over, a stopped attempt failed, the child's reports judged by the
    pruner, attributes set, the trial told."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from results.store.optuna_study import OptunaStudy, rdb_storage
    from results.store.storage_url import StorageUrl

    url = StorageUrl.parse(f"sqlite:///{tmp_path / 'sweeps.db'}")
    worker = OptunaStudy.create(rdb_storage(url), "s", ["val_acc"], ["maximize"])
    span = {"weight_decay": FloatDistribution(0.1, 0.3)}
    for value in (0.1, 0.2, 0.3):
        worker.add(TrialState.WAITING, {"weight_decay": value}, span, {"label": str(value)})
    first = worker.take_over(0, 1, "its worker stopped")
    assert first is not None and worker.frozen(0).state == TrialState.RUNNING
    # A RUNNING trial met again is its dead worker's: failed, and the attempt gets a new one.
    assert worker.take_over(0, 2, "its worker stopped") is None
    assert worker.frozen(0).state == TrialState.FAIL and worker.frozen(0).user_attrs["failure"] == "its worker stopped"
    good, _ = worker.add(TrialState.RUNNING, {"weight_decay": 0.1}, span, {"label": "0.1"})
    worker.copy_curve(good, [(1, 0.5)])
    child = OptunaStudy.load(rdb_storage(url), "s", pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
    trial = child.handle(good)
    trial.report(0.6, 2)
    assert not trial.should_prune()
    trial.set_user_attr("val_acc_ema", 0.5)
    worker.tell(good, values=[0.6], user_attrs={"threshold_epoch": 2.0})
    poor = worker.take_over(1, 1, "its worker stopped")
    assert poor is not None
    child.handle(poor).report(0.1, 1)
    assert child.handle(poor).should_prune()  # below the complete trial's 0.5 at epoch 1
    done = worker.frozen(3)
    assert done.state == TrialState.COMPLETE and done.intermediate_values == {1: 0.5, 2: 0.6}
    assert done.user_attrs == {"label": "0.1", "val_acc_ema": 0.5, "threshold_epoch": 2.0}
    assert "fixed_params" not in done.system_attrs


@pytest.mark.timeout(60)
def test_telling_a_trial_again_changes_nothing(tmp_path: Path, caplog) -> None:
    """A tell retried after a COMMIT whose answer was lost: Optuna refuses to tell twice,
    the adapter leaves the trial as it is (and says so when the two disagree)."""
    import logging

    from results.store.optuna_study import OptunaStudy, rdb_storage

    storage = rdb_storage(f"sqlite:///{tmp_path / 'o.db'}")
    study = OptunaStudy.create(storage, "s", ["val_acc"], ["maximize"])
    trial_id, _ = study.add(optuna.trial.TrialState.RUNNING, {}, {}, {})
    study.tell(trial_id, values=[0.9])
    study.tell(trial_id, values=[0.9])  # Optuna alone: "Cannot tell a COMPLETE trial"
    with caplog.at_level(logging.WARNING, logger="results.store.optuna_study"):
        study.tell(trial_id, state=optuna.trial.TrialState.FAIL)
    frozen = storage.get_trial(trial_id)
    assert frozen.state == optuna.trial.TrialState.COMPLETE and frozen.values == [0.9]
    assert "is COMPLETE already; left so, not made FAIL" in caplog.text
