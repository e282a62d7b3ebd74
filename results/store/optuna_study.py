"""The one adapter between keras-sweep and Optuna's storage.

Every read and write of Optuna's tables goes through here: the RDB storage is opened
by `rdb_storage` alone (one busy timeout, the store's), the study and its trials are
made here, the child reports its epochs and asks the pruner here, and the reports read
the study's user attributes here. Optuna's docs say users should not call
`BaseStorage`'s methods: each call below that does says why `Study` or `Trial` has no
public verb for it (almost always: the trial belongs to another process, or a run's
row needs the trial's id, which `Study.ask` and `Study.add_trial` do not return).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

from results.store.engine import BUSY_TIMEOUT, read_only_engine_kwargs, safe_url, server_engine_kwargs, sqlite_file, unreachable
from results.store.storage_url import StorageUrl
from sweeps.errors import InputError

if TYPE_CHECKING:  # imported where used: a trial's child loads Optuna only with the store
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial, TrialState


log = logging.getLogger(__name__)

def rdb_storage(
    url: str | URL | StorageUrl,
    *,
    read_only: bool = False,
    create_tables: bool = True,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the results store's database: the only place one is opened.

    Args:
        url: the checked storage URL.
        read_only: for the reports and the checks of a database: the store's read-only
            connection, nothing written.
        create_tables: create Optuna's tables, and check their version; False for
            a reader, which must not write.
        heartbeat_interval: seconds between a running trial's heartbeats (writers).
        grace_period: seconds without a heartbeat after which a trial is stale.

    Raises:
        InputError: Optuna cannot open the database.
    """
    import optuna

    parsed = url.url if isinstance(url, StorageUrl) else make_url(url)
    if read_only:
        engine_kwargs = read_only_engine_kwargs(parsed)
    elif sqlite_file(parsed) is not None:
        # Optuna's connections wait for a lock as long as the store's do.
        engine_kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT}}
    else:
        engine_kwargs = server_engine_kwargs()  # no connection held at rest
    with warnings.catch_warnings():  # heartbeats are experimental in Optuna 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                parsed.render_as_string(hide_password=False),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                skip_table_creation=read_only or not create_tables,
                skip_compatibility_check=read_only or not create_tables,
            )
        except Exception as error:  # Optuna wraps driver errors in several types
            from sqlalchemy.exc import OperationalError

            cause = error if isinstance(error, OperationalError) else error.__cause__ or error.__context__
            if sqlite_file(parsed) is None and isinstance(cause, OperationalError):
                raise unreachable(parsed, cause) from None  # a server down: workers wait for it
            raise InputError(f"--storage {safe_url(parsed)}: cannot open it for Optuna: {error}") from None


def close_storage(storage: optuna.storages.RDBStorage) -> None:
    """Closes the storage's session and connections, so that none outlives its use."""
    storage.remove_session()
    storage.engine.dispose()


@contextmanager
def reading(url: str | URL, *, read_only: bool = True) -> Iterator[optuna.storages.RDBStorage]:
    """Optuna's storage for the length of a `with` block, closed after it.

    Args:
        url: the checked storage URL.
        read_only: open it read-only (the reports); False when the store may write.
    """
    storage = rdb_storage(url, read_only=read_only, create_tables=False)
    try:
        yield storage
    finally:
        close_storage(storage)


def study_summaries(url: str | URL) -> list[optuna.study.StudySummary]:
    """Every study in the database, read-only (Optuna's public summaries)."""
    import optuna

    with reading(url) as storage:
        return optuna.get_all_study_summaries(storage, include_best_trial=False)


def study_user_attrs(url: str | URL, study: str, *, read_only: bool = True) -> dict[str, Any]:
    """A study's user attributes; empty when Optuna has no such study.

    Args:
        url: the checked storage URL (Optuna's tables must exist).
        study: the study's name.
        read_only: whether the store that asks is read-only.
    """
    import optuna

    with reading(url, read_only=read_only) as storage:
        try:
            return optuna.load_study(study_name=study, storage=storage).user_attrs
        except KeyError:
            return {}


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies in a storage."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


@dataclass
class OptunaStudy:
    """A study and the verbs the runner needs on its trials.

    Args:
        study: Optuna's study (public API: `ask`, `tell`, `user_attrs`, …).
        storage: the storage it was opened on.
        study_id: the study's id in that storage (`Study` does not expose it, and the
            storage's trial verbs take it).
    """

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    study_id: int

    @classmethod
    def _of(cls, study: optuna.Study, storage: optuna.storages.BaseStorage) -> OptunaStudy:
        return cls(study, storage, storage.get_study_id_from_name(study.study_name))

    @classmethod
    def create(
        cls, storage: optuna.storages.BaseStorage, name: str, objectives: Sequence[str],
        directions: Sequence[str],
    ) -> OptunaStudy:
        """Makes the study (or finds it, made meanwhile), its objectives named."""
        import optuna

        study = optuna.create_study(study_name=name, storage=storage, directions=list(directions), load_if_exists=True)
        opened = cls._of(study, storage)
        opened.name_metrics(objectives)
        return opened

    @classmethod
    def load(
        cls, storage: optuna.storages.BaseStorage, name: str, *,
        sampler: optuna.samplers.BaseSampler | None = None, pruner: optuna.pruners.BasePruner | None = None,
    ) -> OptunaStudy:
        """An existing study.

        Raises:
            KeyError: no such study.
        """
        import optuna

        return cls._of(optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), storage)

    @property
    def name(self) -> str:
        return self.study.study_name

    def name_metrics(self, objectives: Sequence[str]) -> None:
        """Names the objectives (optuna-dashboard shows `val_acc`, not "Objective 0");
        also on a study made before names were set."""
        import optuna

        if self.study.metric_names == list(objectives):
            return
        with warnings.catch_warnings():  # experimental in Optuna 4
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names(list(objectives))

    # Trials ---------------------------------------------------------------------

    def trial_id(self, number: int) -> int:
        """The storage id of trial `number` (what the child and the heartbeat name it by)."""
        # No public way from a number to the id: `Trial(study, id)` takes the id.
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def frozen(self, number: int) -> FrozenTrial:
        """Trial `number` as it is stored (its state, params and distributions)."""
        # One trial: `Study.get_trials` would read every trial of the study.
        return self.storage.get_trial(self.trial_id(number))

    def add(
        self, state: TrialState, params: dict[str, Any], distributions: dict[str, BaseDistribution],
        user_attrs: dict[str, Any],
    ) -> tuple[int, int]:
        """A new trial with its params from the start; returns its (id, number).

        A WAITING trial stands for a registered grid point (its params shown by the
        dashboard before it trains); a RUNNING one for a run's next attempt.
        """
        import optuna

        template = optuna.trial.create_trial(
            state=state, params=params, distributions=distributions, user_attrs=user_attrs
        )
        # `Study.add_trial` returns nothing, and `Study.ask` would hand out another
        # run's WAITING trial: the run's row needs this trial's number, so it is made
        # here with the template `add_trial` would pass.
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        return trial_id, self.storage.get_trial(trial_id).number

    def take_over(self, number: int, attempt: int, reason: str) -> int | None:
        """Trial `number` for the run's `attempt`, if it is WAITING (a registered grid
        point): made RUNNING, its id returned. A RUNNING one (its worker stopped) is
        failed with `reason`, and None returned, as for a finished one: the attempt
        gets a new trial.
        """
        import optuna
        from optuna.trial import TrialState

        trial_id = self.trial_id(number)
        state = self.storage.get_trial(trial_id).state
        # `Study.ask` starts whichever WAITING trial comes first, not this run's: the
        # storage's compare-and-set is the only way to start one chosen trial.
        if state == TrialState.WAITING and self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
            self.set_user_attr(trial_id, "attempt", attempt)
            return trial_id
        if state == TrialState.RUNNING:
            try:
                self.set_user_attr(trial_id, "failure", reason)
            except optuna.exceptions.UpdateFinishedTrialError:
                return None  # fail_stale_trials got there first
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        return None

    def tell(
        self, trial_id: int, *, values: Sequence[float] | None = None, state: TrialState | None = None,
        user_attrs: dict[str, Any] | None = None,
    ) -> None:
        """Finishes the attempt's trial (complete with `values`, or in `state`), its user
        attributes set first. A trial finished already is left as it is: a retry after
        a COMMIT whose answer was lost must change nothing (Optuna refuses to tell twice)."""
        from optuna.trial import TrialState

        told = self.storage.get_trial(trial_id).state
        if told.is_finished():
            wanted = state or TrialState.COMPLETE
            if told != wanted:
                log.warning("trial %d is %s already; left so, not made %s", trial_id, told.name, wanted.name)
            return
        for key, value in (user_attrs or {}).items():
            self.set_user_attr(trial_id, key, value)
        # `Study.tell` takes the trial's number; the worker holds the id it trains.
        number = self.storage.get_trial_number_from_id(trial_id)
        self.study.tell(number, list(values) if values is not None else None, state=state)

    def handle(self, trial_id: int) -> optuna.trial.Trial:
        """Optuna's public `Trial` for a trial that another process made (the worker, for
        the child): `report`, `should_prune`, `set_user_attr` through it."""
        import optuna

        return optuna.trial.Trial(self.study, trial_id)

    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """One user attribute of a trial of another process, or of one made by `add`."""
        # Without building a `Trial`, which consults the sampler for every attribute.
        self.storage.set_trial_user_attr(trial_id, key, value)

    def copy_curve(self, trial_id: int, curve: Sequence[tuple[int, float]]) -> None:
        """The run's val_acc so far into its new attempt's trial, so that the dashboard
        shows the whole run in its last attempt."""
        for epoch, val_acc in curve:
            # `Trial.report` refuses a two-objective study, whose dashboard still
            # plots the curve.
            self.storage.set_trial_intermediate_value(trial_id, epoch, val_acc)

    def heartbeat(self, trial_id: int) -> None:
        """Beats for a trial that a child trains: its worker keeps it alive."""
        # Optuna beats only inside `Study.optimize`; our trials run in a child process.
        self.storage.record_heartbeat(trial_id)

    def fail_stale(self) -> None:
        """Fails the trials whose workers stopped beating (Optuna's own rule)."""
        import optuna

        with warnings.catch_warnings():  # experimental in Optuna 4 and 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
