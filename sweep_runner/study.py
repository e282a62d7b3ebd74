"""A sweep as an Optuna study: create it, refuse a changed `[train]`, register the runs.

The results store's `runs` table is the queue: one row per run key, claimed atomically
by a worker, so that each grid point is trained to completion exactly once. Optuna's
trials mirror it (one WAITING trial per run, a new trial per attempt) so that
`optuna trials` and optuna-dashboard show the study as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import optuna

from results.store import OptunaStudy, ResultStore, StorageUrl, creation_lock, study_names
from sweep_runner.storage import optuna_storage
from sweep_runner.trial_params import CONSTANTS_ATTR, GridParams, grid_params
from sweeps.config import RunConfig
from sweeps.errors import InputError, unknown_study
from sweeps.sweep_file import Sweep, Trial, name_problem, parse_sweep

SEARCH_SLOT = "search-{:05d}"


@dataclass
class OpenStudy:
    """A study ready for workers.

    Args:
        sweep: the sweep file it was made from.
        trials: the Optuna study, through the one adapter to Optuna's storage.
        store: the results store on the same database.
        url: the checked database URL.
    """

    sweep: Sweep
    trials: OptunaStudy
    store: ResultStore
    url: StorageUrl

    @property
    def name(self) -> str:
        return self.trials.name

    @property
    def study(self) -> optuna.Study:
        """Optuna's study (`ask`, `tell`, its sampler)."""
        return self.trials.study

    @cached_property
    def grid(self) -> GridParams:
        """How the grid's keys are recorded in Optuna (empty for a `[search]`)."""
        return grid_params(self.sweep)


def directions(sweep: Sweep) -> list[str]:
    return ["maximize" if o == "val_acc" else "minimize" for o in sweep.study.objectives]


def prepare_study(sweep: Sweep, url: str | StorageUrl, name: str | None = None) -> OpenStudy:
    """Creates the study, or checks and extends an existing one; registers its runs.

    Safe when several `sweep run` start at once on one database, new or not: one
    creates Optuna's tables, the study and its WAITING trials, the others find them.
    """
    if name is not None and (problem := name_problem(name)):
        raise InputError(f"--new-study: {problem}")
    url = StorageUrl.parse(url)
    with creation_lock(url):
        return _prepare(sweep, url, name, ResultStore(url))


def _prepare(sweep: Sweep, url: StorageUrl, name: str | None, store: ResultStore) -> OpenStudy:
    storage = optuna_storage(url)
    name = name or sweep.name
    if name in study_names(storage):
        trials = OptunaStudy.load(storage, name)
        _refuse_changes(sweep, trials.study)
        trials.name_metrics(sweep.study.objectives)  # a study made before they were named
    else:
        trials = OptunaStudy.create(storage, name, sweep.study.objectives, directions(sweep))
        trials.study.set_user_attr("train", sweep.train_signature())
        trials.study.set_user_attr("report_threshold", sweep.report.threshold)
        trials.study.set_user_attr("report_thresholds", sweep.report.thresholds)
        trials.study.set_user_attr("report_swing_start", sweep.report.swing_start)
    # The newest text, so that `sweep resume` sees the points an extended file added.
    trials.study.set_user_attr("sweep_file", sweep.text)
    trials.study.set_user_attr("sweep_path", str(sweep.path))
    opened = OpenStudy(sweep, trials, store, url)
    if sweep.search is None:
        trials.study.set_user_attr(CONSTANTS_ATTR, opened.grid.constants)
    register_runs(opened)
    return opened


def load_study(name: str, url: str | StorageUrl) -> OpenStudy:
    """An existing study, with the sweep file it was made from (`sweep resume`, `sweep worker`)."""
    if problem := name_problem(name):
        raise InputError(f"study {name!r}: not a study name: {problem}")
    url = StorageUrl.parse(url)
    store = ResultStore(url, create=False)  # a mistyped URL must not create a database
    storage = optuna_storage(url)
    names = study_names(storage)
    if name not in names:
        raise unknown_study(name, url.shown, sorted(names))
    trials = OptunaStudy.load(storage, name)
    text = trials.study.user_attrs.get("sweep_file")
    if text is None:
        raise InputError(f"study {name!r}: was not made by `sweep run` (no sweep file is stored with it)")
    sweep = parse_sweep(text, trials.study.user_attrs.get("sweep_path", f"{name}.toml"))
    if sweep.search is not None:
        trials = OptunaStudy.load(storage, name, sampler=make_sampler(sweep))
    return OpenStudy(sweep, trials, store, url)


def make_sampler(sweep: Sweep, slot: int = 0) -> optuna.samplers.BaseSampler:
    """The `[search]` sampler; TPE lies about running trials so that workers spread out.

    Each slot (the k-th trial of the search) gets its own seed: workers seeded alike
    would otherwise draw the same random start-up points. QMC keeps one seed, since
    its sequence already differs per trial.
    """
    assert sweep.search is not None
    name, seed = sweep.search.sampler, sweep.search.seed
    if seed is not None and name != "qmc":
        seed += slot
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(10, max(2, sweep.search.n_trials // 4)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.QMCSampler(seed=seed)


def _refuse_changes(sweep: Sweep, study: optuna.Study) -> None:
    stored = study.user_attrs.get("train", {})
    current = sweep.train_signature()
    changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
    if changed:
        raise InputError(
            f"{sweep.path}: train: differs from study {study.study_name!r} in "
            f"{', '.join(changed)}: keep [train] as it was, or start a separate study "
            "with --new-study NAME"
        )
    wanted = [d.upper() for d in directions(sweep)]
    have = [d.name for d in study.directions]
    if wanted != have:
        raise InputError(
            f"{sweep.path}: study.objectives: study {study.study_name!r} was made with "
            f"{len(have)} objective(s); start a separate study with --new-study NAME"
        )


def register_runs(opened: OpenStudy) -> int:
    """Registers every trial not yet in the store and enqueues its Optuna trial.

    Returns how many were new: an extended grid adds only its new points.
    """
    sweep, store = opened.sweep, opened.store
    before = len(store.runs(opened.name))
    if sweep.search is not None:
        # One slot per trial: the sampler fills a slot's configuration when it is claimed.
        for k in range(1, sweep.search.n_trials + 1):
            store.register_run(opened.name, SEARCH_SLOT.format(k), label=f"#{k}", comment=None, config={})
        return len(store.runs(opened.name)) - before
    for trial in sweep.trials():
        run_id = store.register_run(
            opened.name, trial.run_key, label=trial.label, comment=trial.comment,
            config=trial.config.model_dump(mode="json"),
        )
        if store.get_run(run_id)["trial_number"] is None:
            number = _enqueue(opened, trial)
            store.set_trial_number(run_id, number)
    return len(store.runs(opened.name)) - before


def trial_attrs(label: str, run_key: str, comment: str | None, attempt: int) -> dict:
    return {"label": label, "run_key": run_key, "comment": comment or "", "attempt": attempt}


def grid_trial(opened: OpenStudy, config: dict[str, Any], attrs: dict[str, Any]) -> tuple[dict, dict, dict]:
    """A grid run's Optuna params, their distributions and its user attributes.

    Args:
        opened: the study.
        config: the run's configuration (RunConfig's JSON form).
        attrs: `trial_attrs` of the attempt.
    """
    params, distributions = opened.grid.params(config)
    schedule = RunConfig.model_validate(config).schedule_notation()
    return params, distributions, {**attrs, **opened.grid.user_attrs(config), "schedule": schedule}


def _enqueue(opened: OpenStudy, trial: Trial) -> int:
    # The params from the start: optuna-dashboard plots a grid point's λ, α from its
    # first attempt, which takes over this very trial.
    from optuna.trial import TrialState

    params, distributions, attrs = grid_trial(
        opened, trial.config.model_dump(mode="json"), trial_attrs(trial.label, trial.run_key, trial.comment, 0)
    )
    _, number = opened.trials.add(TrialState.WAITING, params, distributions, attrs)
    return number
