"""Optuna's importance of each searched quantity, for a `[search]` study's report.

Read through Optuna's public API (`optuna.load_study`, `optuna.importance`) from the
study's own storage. Importance needs at least two complete trials that differ in some
quantity; with fewer, the report says so instead of a plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from results.store.optuna_study import reading
from results.store.result_store import ResultStore


@dataclass(frozen=True)
class Importances:
    """The importances, or why there are none.

    Args:
        values: quantity → importance (they sum to 1), largest first.
        target: what they explain (the first objective).
        note: why `values` is empty, for the page.
    """

    values: dict[str, float] = field(default_factory=dict)
    target: str = "best val_acc"
    note: str = ""


def param_importances(store: ResultStore, study: str, objective: str = "val_acc") -> Importances:
    """The importance of each searched quantity for the first objective.

    Args:
        store: an open store of the study's database (read-only or not).
        study: the study's name.
        objective: the study's first objective (`val_acc` or `threshold_epoch`).
    """
    import optuna
    from optuna.trial import TrialState

    target_name = "best val_acc" if objective == "val_acc" else objective.replace("_", " ")
    with reading(store.url, read_only=store.read_only) as storage:
        try:
            loaded = optuna.load_study(study_name=study, storage=storage)
        except KeyError:
            return Importances(target=target_name, note="the study is not in Optuna's tables")
        complete = loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        varied = {
            name
            for name in {n for trial in complete for n in trial.params}
            if len({trial.params.get(name) for trial in complete}) > 1
        }
        if len(complete) < 2 or not varied:
            return Importances(
                target=target_name,
                note=f"{len(complete)} complete trial(s): importance needs at least 2 that differ in a quantity",
            )
        # fANOVA, seeded: how much of the objective's variance each quantity explains,
        # whatever the direction (Optuna 5's default, PED-ANOVA, ranks the quantities
        # that make the target low, wrong for val_acc), and the same on every rewrite.
        if len({trial.values[0] for trial in complete}) < 2:
            # fANOVA raises "zero total variance" rather than answer.
            return Importances(target=target_name, note=f"every complete trial has the same {target_name}")
        values = optuna.importance.get_param_importances(
            loaded,
            evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
            target=lambda trial: trial.values[0],
            params=sorted(varied),
        )
        return Importances(values=dict(values), target=target_name)
