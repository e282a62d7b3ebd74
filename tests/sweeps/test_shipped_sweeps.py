"""The sweep files shipped in `sweeps/`: every one loads and passes `sweep check`, and the
post's tables and the λ/α grid stand for the runs they claim to."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep_runner.cli import main
from sweeps.sweep_file import load_sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = ROOT / "sweeps"
SHIPPED = sorted(SWEEPS.glob("*.toml"))

TABLE1_LABELS = ["0", "1", "2", "3A", "3B", "4", "5", "6", "7", "8", "21", "9", "10", "11"]
TABLE2_LABELS = ["12", "13", "14", "15", "16", "17", "18", "19", "20", "21"]
TABLE3_LABELS = ["22", "23", "24", "25"]


def _trials(name: str):
    return load_sweep(SWEEPS / f"{name}.toml").trials()


def _by_label(name: str):
    return {trial.label: trial for trial in _trials(name)}


def test_the_post_files_are_shipped() -> None:
    names = {path.stem for path in SHIPPED}
    assert {"post_table1", "post_table2", "post_table3", "lambda_alpha_grid", "ema_momentum", "adam_l2"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_sweep_loads_and_checks(path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = load_sweep(path)
    trials = sweep.trials()
    if sweep.search is None:
        assert trials
        assert len({t.run_key for t in trials}) == len(trials)
    assert main(["check", str(path)]) == 0
    assert main(["check", "--json", str(path)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("name", "labels"),
    [("post_table1", TABLE1_LABELS), ("post_table2", TABLE2_LABELS), ("post_table3", TABLE3_LABELS)],
)
def test_post_tables_list_their_runs_in_order(name: str, labels: list[str]) -> None:
    assert [t.label for t in _trials(name)] == labels


@pytest.mark.parametrize("name", ["post_table1", "post_table2", "post_table3"])
def test_post_tables_share_the_post_settings(name: str) -> None:
    sweep = load_sweep(SWEEPS / f"{name}.toml")
    assert sweep.report.threshold == 0.92
    for trial in sweep.trials():
        config = trial.config
        assert (config.dataset, config.depth, config.batch_size) == ("cifar10", 56, 64)
        assert (config.shift, config.flip, config.l2) == (0.07, True, 0.0)
        assert config.use_ema and config.schedule is not None
        assert not config.schedule.relative
        assert config.lr_at(0) == pytest.approx(config.learning_rate)
        assert config.epochs == config.schedule.last_epoch


def test_unknown_cells_are_commented() -> None:
    for name in ("post_table1", "post_table2", "post_table3"):
        for trial in _trials(name):
            assert trial.comment, f"{name} run {trial.label} has no comment"


def test_table1_run_7_steps_at_epoch_20() -> None:
    run7 = _by_label("post_table1")["7"].config
    assert run7.schedule_notation() == "[8.e-4, 20][4.e-4, 20][8.e-5, 40][1.e-5, 50][2.e-6, 60]"
    assert run7.lr_at(19.999) == pytest.approx(8e-4)
    assert run7.lr_at(20) == pytest.approx(4e-4)
    assert run7.lr_at(30) == pytest.approx((4e-4 + 8e-5) / 2)


def test_table1_known_cells() -> None:
    runs = _by_label("post_table1")
    assert {label: t.config.weight_decay for label, t in runs.items() if label in
            ("0", "1", "2", "5", "6", "7", "8", "9", "10", "21", "11")} == {
        "0": 0.0, "1": 5e-4, "2": 4e-3, "5": 0.1, "6": 0.1, "7": 0.1, "8": 0.15,
        "9": 0.25, "10": 0.3, "21": 0.2, "11": 0.4,
    }
    # The post's order, and the schedules' last LRs of the rows read back in post-runs.md.
    assert list(runs)[-5:] == ["8", "21", "9", "10", "11"]
    assert [runs[l].config.lr_at(60) for l in ("21", "9", "10")] == pytest.approx([2e-6, 4e-6, 2e-6])
    assert runs["3A"].config.weight_decay < 0.05 <= runs["3B"].config.weight_decay
    assert runs["6"].config.ema_momentum != runs["5"].config.ema_momentum
    assert all(t.config.learning_rate == 8e-4 for t in runs.values())


def test_table2_special_settings() -> None:
    runs = _by_label("post_table2")
    run12 = runs["12"].config
    assert run12.learning_rate == 4e-4 and run12.lr_at(0) == pytest.approx(4e-4)
    assert run12.weight_decay == 0.2
    assert [runs[l].config.subtract_pixel_mean for l in ("16", "17", "18")] == [True, False, False]
    assert runs["18"].config.validation.startswith("stratified:")
    assert runs["19"].config.validation.startswith("stratified:")
    assert runs["20"].config.validation == "split:0.14"
    assert [runs[l].config.augment for l in ("18", "19", "20")] == [True, False, False]
    optimal, run21 = runs["21"].config, _by_label("post_table1")["21"].config
    assert optimal.run_key == run21.run_key  # Table 2's optimal run is Table 1's run 21


def test_table3_epochs_equal_the_last_breakpoints() -> None:
    runs = _by_label("post_table3")
    assert {label: t.config.epochs for label, t in runs.items()} == {
        "22": 50, "23": 50, "24": 40, "25": 36,
    }
    for trial in runs.values():
        assert trial.config.epochs == trial.config.schedule.breakpoints[-1][1]


def test_lambda_alpha_grid_expands_to_every_pair() -> None:
    sweep = load_sweep(SWEEPS / "lambda_alpha_grid.toml")
    lambdas, alphas = sweep.space["weight_decay"], sweep.space["learning_rate"]
    trials = sweep.trials()
    assert len(trials) == len(lambdas) * len(alphas)
    assert len({t.run_key for t in trials}) == len(trials)
    assert {(t.config.weight_decay, t.config.learning_rate) for t in trials} == {
        (lam, alpha) for lam in lambdas for alpha in alphas
    }
    assert all(0.05 <= lam <= 0.3 for lam in lambdas)
    assert all(4e-4 <= alpha <= 1.6e-3 for alpha in alphas)
    for trial in trials:
        config = trial.config
        assert config.schedule is not None and config.schedule.relative
        assert config.lr_at(0) == pytest.approx(config.learning_rate)
        assert config.epochs == 60 and config.ema_momentum == 0.98


def test_lambda_alpha_grid_at_alpha_8e4_is_the_posts_schedule() -> None:
    trial = next(t for t in _trials("lambda_alpha_grid") if t.config.learning_rate == 8e-4)
    post = _by_label("post_table1")["8"].config  # [8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]
    for epoch in (0, 10, 20, 30, 40, 45, 50, 55, 60):
        assert trial.config.lr_at(epoch) == pytest.approx(post.lr_at(epoch))


def test_the_m_sweep_varies_only_m_at_run_21s_settings() -> None:
    trials = _trials("ema_momentum")
    run21 = _by_label("post_table1")["21"].config.model_dump()
    assert sorted(t.config.ema_momentum for t in trials) == [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
    for trial in trials:
        assert trial.config.evaluate_ema and trial.config.use_ema
        assert {k: v for k, v in trial.config.model_dump().items() if k != "ema_momentum"} == {
            k: v for k, v in run21.items() if k != "ema_momentum"
        }


def test_the_adam_l2_comparison_run() -> None:
    runs = _by_label("adam_l2")
    assert (runs["L2"].config.weight_decay, runs["L2"].config.l2) == (0.0, 8e-5)
    assert runs["21"].config.run_key == _by_label("post_table1")["21"].config.run_key
    assert runs["0"].config.run_key == _by_label("post_table1")["0"].config.run_key
