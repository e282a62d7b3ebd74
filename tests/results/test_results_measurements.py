"""The new epoch columns end to end: store → load_epochs / export / tables / plots /
the trial's user attributes, with a diverged run's NaN and inf in every output."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest

import results
from results.report.commands import export_command, plot_command
from results.store.result_store import ResultStore
from sweeps.config import RunConfig

NEW_COLUMNS = (
    "val_loss_ema", "val_acc_ema", "test_loss", "test_acc", "weight_norm", "weight_norm_stage1",
    "weight_norm_stage2", "weight_norm_stage3", "effective_lr", "angular_update",
)


def _epoch(epoch: int, scale: float, **values: float) -> dict[str, float]:
    record = {
        "epoch": epoch, "loss": 1.0 / epoch, "acc": 0.5, "val_loss": 1.2 / epoch, "val_acc": 0.4 + epoch / 100,
        "lr": 8e-4, "seconds": 10.0, "images_per_second": 100.0, "val_loss_ema": 1.1 / epoch,
        "val_acc_ema": 0.45 + epoch / 100, "test_loss": 1.3, "test_acc": 0.41, "weight_norm": 50.0 * scale,
        "weight_norm_stage1": 10.0, "weight_norm_stage2": 20.0, "weight_norm_stage3": 40.0 * scale,
        "effective_lr": 8e-4 / (10 * scale), "angular_update": 0.02,
    }
    record.update(values)
    return record


@pytest.fixture
def study_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    runs = {
        "steady": (RunConfig(weight_decay=0.0, ema_momentum=0.9), [_epoch(e, 1.0) for e in (1, 2, 3)]),
        "diverged": (
            RunConfig(weight_decay=0.5, ema_momentum=0.99),
            [_epoch(1, 0.8), _epoch(2, 0.8, val_loss=math.inf, weight_norm=math.inf),
             {**_epoch(3, 0.8), **{name: math.nan for name in ("loss", "val_loss", "val_acc", *NEW_COLUMNS)}}],
        ),
    }
    with ResultStore(url) as store:
        for number, (label, (config, records)) in enumerate(runs.items()):
            run_id = store.register_run("s", config.run_key, label=label, comment="", trial_number=number,
                                        config=config.model_dump(mode="json"))
            store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=3)
            for record in records:
                store.record_epoch(run_id, record)
            store.finish_run(run_id, "complete", device="cpu", versions={})
    return url


def test_load_epochs_and_the_epoch_export_carry_the_new_columns(study_url, tmp_path):
    epochs = results.load_epochs(study_url, "s")
    assert set(NEW_COLUMNS) <= set(epochs.columns)
    assert list(epochs["label"].drop_duplicates()) == ["steady", "diverged"]  # the file's order
    steady = epochs[epochs["label"] == "steady"]
    assert list(steady["val_acc_ema"]) == pytest.approx([0.46, 0.47, 0.48])
    diverged = epochs[epochs["label"] == "diverged"].set_index("epoch")
    assert diverged.loc[2, "val_loss"] == math.inf and math.isnan(diverged.loc[3, "weight_norm"])
    out = tmp_path / "epochs.csv"
    assert export_command("s", storage=study_url, format="csv", epochs=True, output=str(out)) == 0
    back = pd.read_csv(out)
    assert set(NEW_COLUMNS) <= set(back.columns)
    assert back["weight_norm"].tolist()[3:5] == [40.0, math.inf] and math.isnan(back["weight_norm"].iloc[5])


def test_the_raw_table_has_best_ema_and_final_norm_and_every_format_takes_nan_and_inf(study_url, tmp_path):
    raw = results.load(study_url, "s").set_index("label")
    assert (raw.loc["steady", "val_acc_ema_best"], raw.loc["steady", "epoch_best_ema"]) == (
        pytest.approx(0.48), 3)
    assert raw.loc["steady", "weight_norm_final"] == 50.0
    # The diverged run: its last measured norm is infinite, its swing too.
    assert raw.loc["diverged", "weight_norm_final"] == math.inf
    assert raw.loc["diverged", "delta_val_loss"] == math.inf
    assert raw.loc["steady", "delta_val_loss"] == 0.0  # only falls
    for style in ("summary", "post", "raw"):
        for format in ("md", "csv", "html", "latex", "json"):
            if style == "post" and format in ("csv", "json"):
                continue  # the post's headers are for reading
            out = tmp_path / f"t-{style}.{format}"
            assert export_command("s", storage=study_url, format=format, style=style, output=str(out)) == 0
            text = out.read_text(encoding="utf-8")
            assert "diverged" in text
            if format == "json":
                json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
            if style == "raw" and format in ("md", "html", "latex"):
                assert "inf" in text  # shown as what it is
    from rich.console import Console

    from results.report.terminal import fitted_table

    console = Console(file=io.StringIO(), width=400)
    console.print(fitted_table(results.load(study_url, "s"), width=400))
    assert "inf" in console.file.getvalue()


@pytest.mark.timeout(120)
def test_plots_draw_the_new_curves_and_a_diverged_run(study_url, tmp_path, capsys):
    folder = tmp_path / "plots"
    assert plot_command("s", storage=study_url, output=str(folder)) == 0
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["s-ema-weights.png", "s-heatmaps.png", "s-run-diverged.png", "s-run-steady.png",
                     "s-val_loss.png"]
    from results.report.plots import ema_and_norm_figure, run_figure

    epochs = results.load_epochs(study_url, "s")
    figure = run_figure("diverged", epochs[epochs["label"] == "diverged"], log=True)
    loss_axes, acc_axes, lr_axes, norm_axes = figure.axes[:4]
    assert "val_loss_ema" in [line.get_label() for line in loss_axes.get_lines()]
    assert "diverged (epoch 2)" in [line.get_label() for line in loss_axes.get_lines()]
    assert "effective lr = lr/‖w‖" in [line.get_label() for line in lr_axes.get_lines()]
    figure = ema_and_norm_figure(results.load(study_url, "s"), title="t")
    m_axes, norm_axes = figure.axes[:2]
    assert [len(line.get_xdata()) for line in m_axes.get_lines()] == [2, 2]
    assert len(norm_axes.get_lines()[0].get_xdata()) == 1  # the infinite norm is left out


def test_the_trial_gets_the_last_epochs_measurements():
    import optuna

    from sweep_runner.child import record_measurements

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = optuna.create_study().ask()
    record_measurements(trial.set_user_attr, [_epoch(1, 1.0), _epoch(2, 0.5, angular_update=math.nan)])
    attrs = trial.user_attrs
    assert {name: attrs[name] for name in ("weight_norm", "val_acc_ema", "angular_update")} == {
        "weight_norm": 25.0, "val_acc_ema": pytest.approx(0.47), "angular_update": None,
    }
    assert set(NEW_COLUMNS) <= set(attrs)
    assert (attrs["val_acc_ema_best"], attrs["epoch_best_ema"]) == (pytest.approx(0.47), 2)


def test_sort_is_checked_and_orders_the_export(study_url, tmp_path, capsys):
    from sweep_runner.cli import main
    from sweeps.errors import InputError

    with pytest.raises(InputError, match=r"^--sort bogus: must be one of file, label, val_acc_best"):
        export_command("s", storage=study_url, sort="bogus")
    with pytest.raises(InputError, match="must be one of file, label"):
        results.load(study_url, "s", sort="bogus")
    out = tmp_path / "sorted.csv"
    assert main(["export", "s", "--storage", study_url, "--style", "raw", "--format", "csv",
                 "--sort", "weight_norm_final", "--output", str(out)]) == 0
    assert list(pd.read_csv(out)["label"]) == ["steady", "diverged"]  # 50 before inf
    code = main(["export", "s", "--storage", study_url, "--sort", "bogus", "--output", str(tmp_path / "x.md")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--sort bogus" in err
    assert not (tmp_path / "x.md").exists()
