"""A `[search]` study's report: Optuna's importance of each searched quantity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from report_studies import figures_of
from results.store.result_store import ResultStore
from sweep_runner.cli import main
from sweeps.config import RunConfig

SEARCH_TEXT = '''name = "search"
[train]
dataset = "digits"
depth = 11
[search]
n_trials = {n}
[search.space]
weight_decay = {{low = 0.01, high = 0.5, log = true}}
learning_rate = {{low = 1e-4, high = 1e-2, log = true}}
'''


def _search_study(url: str, trials: int, *, flat: bool = False) -> None:
    """A search whose best val_acc depends on λ only: λ must come out the important one."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {"weight_decay": FloatDistribution(0.01, 0.5, log=True),
                     "learning_rate": FloatDistribution(1e-4, 1e-2, log=True)}
    with ResultStore(url) as store:  # first: the store refuses a database of plain Optuna
        study = optuna.create_study(study_name="search", storage=url, direction="maximize")
        study.set_user_attr("sweep_file", SEARCH_TEXT.format(n=trials))
        for k in range(trials):
            lam, alpha = 0.01 * 1.5**k, 1e-4 * 10 ** ((k * 7 % 5) / 2.5)
            best = 0.9 if flat else 0.9 - 0.05 * abs(math.log(lam / 0.1))
            study.add_trial(optuna.trial.create_trial(
                params={"weight_decay": lam, "learning_rate": alpha}, distributions=distributions, value=best))
            config = RunConfig(dataset="digits", depth=11, epochs=2, weight_decay=lam, learning_rate=alpha)
            run_id = store.register_run("search", f"search-{k + 1:05d}", label=f"{k + 1}", comment=None,
                                        config=config.model_dump(mode="json"), trial_number=k)
            store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=3)
            for epoch in (1, 2):
                store.record_epoch(run_id, {"epoch": epoch, "loss": 1.0, "acc": 0.5, "val_loss": 1.0,
                                            "val_acc": best - 0.1 * (2 - epoch), "lr": alpha, "seconds": 1.0,
                                            "images_per_second": 1.0})
            store.finish_run(run_id, "complete")


@pytest.mark.timeout(120)
def test_search_report_shows_the_importance_of_each_quantity(study_url: str, tmp_path: Path) -> None:
    _search_study(study_url, 8)
    output = tmp_path / "search.html"
    assert main(["report", "search", "--storage", study_url, "--output", str(output)]) == 0
    importance = figures_of(output.read_text(encoding="utf-8"))["importance"]["data"][0]
    shares = dict(zip(importance["y"], importance["x"], strict=True))
    assert set(shares) == {"λ (weight decay)", "α (initial learning rate)"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["λ (weight decay)"] > shares["α (initial learning rate)"]


@pytest.mark.timeout(120)
def test_search_report_with_one_trial_says_why_there_is_no_importance(study_url: str, tmp_path: Path) -> None:
    _search_study(study_url, 1)
    output = tmp_path / "search.html"
    assert main(["report", "search", "--storage", study_url, "--output", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert "importance" not in figures_of(page)
    assert "1 complete trial(s): importance needs at least 2 that differ in a quantity" in page


@pytest.mark.timeout(120)
def test_search_report_of_trials_that_all_scored_alike_says_so(study_url: str, tmp_path: Path) -> None:
    _search_study(study_url, 3, flat=True)
    output = tmp_path / "search.html"
    assert main(["report", "search", "--storage", study_url, "--output", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert "importance" not in figures_of(page)
    assert "every complete trial has the same best val_acc" in page
