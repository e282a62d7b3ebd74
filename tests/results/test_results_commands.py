"""`sweep export`, `sweep plot`, `sweep status` and `results.load`, as a new user runs them."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import Engine, event

import results
from results.report.commands import export_command
from results.store.result_store import ResultStore
from sweep_runner.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _sweep(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_prints_the_summary_and_the_posts_table(post_study, capsys):
    url, study, _ = post_study
    code, out, err = _sweep(capsys, "export", study, "--storage", url)
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(
        "| label | threshold_epoch | val_acc_at_threshold | acc_at_threshold | epoch_best | val_acc_best |"
    )
    assert "| 0 |  |  |  | 60 | 0.91290 |" in out  # never reached 0.92: empty
    code, out, err = _sweep(capsys, "export", study, "--storage", url, "--style", "post")
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith("| # | epoch | acc_val | acc | epo best | val acc best |")
    assert "| 0 | (47) | (0.91230) |" in out


def test_the_posts_headers_are_refused_in_csv_and_json(post_study, capsys, tmp_path):
    url, study, _ = post_study
    for format in ("csv", "json"):
        code, out, err = _sweep(
            capsys, "export", study, "--storage", url, "--style", "post", "--format", format,
            "--output", str(tmp_path / f"t.{format}"),
        )
        assert (code, out) == (2, "") and err.count("\n") == 1 and "--style summary" in err
    assert not list(tmp_path.glob("t.*"))


def test_export_writes_a_file_in_each_format(post_study, capsys, tmp_path):
    url, study, _ = post_study
    for format in ("csv", "md", "html", "latex", "json"):
        for style in ("summary", "post", "raw"):
            if style == "post" and format in ("csv", "json"):
                continue
            path = tmp_path / f"table-{style}.{format}"
            assert _sweep(
                capsys,
                "export",
                study,
                "--storage",
                url,
                "--format",
                format,
                "--style",
                style,
                "--output",
                str(path),
            ) == (0, "", "")
            assert path.stat().st_size > 0
    assert pd.read_csv(tmp_path / "table-raw.csv")["state"].tolist()[-1] == "waiting"


def test_the_post_table_agrees_with_its_own_epoch_export(post_study, capsys, tmp_path):
    url, study, _ = post_study
    for name, extra in (("post.csv", []), ("epochs.csv", ["--epochs"])):
        assert (
            _sweep(
                capsys,
                "export",
                study,
                "--storage",
                url,
                "--format",
                "csv",
                "--output",
                str(tmp_path / name),
                *extra,
            )[0]
            == 0
        )
    post = pd.read_csv(tmp_path / "post.csv", dtype={"label": str}).set_index("label")
    epochs = pd.read_csv(tmp_path / "epochs.csv", dtype={"label": str})
    assert set(epochs["label"]) == set(post.index) - {"13"}
    for label, run in epochs.groupby("label"):
        row = post.loc[label]
        best = run.loc[run["val_acc"].idxmax()]
        assert (row["epoch_best"], row["val_acc_best"]) == (best["epoch"], best["val_acc"])
        assert row["loss_min"] == run["loss"].min() and row["val_loss_min"] == run["val_loss"].min()
        crossed = run[run["val_acc"] >= 0.92]
        if row["threshold_reached"]:
            assert row["threshold_epoch"] == crossed["epoch"].iloc[0]
            assert row["val_acc_at_threshold"] == crossed["val_acc"].iloc[0]
        else:
            assert crossed.empty and pd.isna(row["threshold_epoch"]) and pd.isna(row["val_acc_at_threshold"])


def test_the_studys_own_threshold_is_the_default(post_study, capsys):
    import optuna

    url, study, _ = post_study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=url, study_name=study).set_user_attr("report_threshold", 0.93)
    _, out, _ = _sweep(capsys, "export", study, "--storage", url, "--format", "csv")
    assert pd.read_csv(io.StringIO(out), dtype={"label": str}).set_index("label").loc["10", "threshold_epoch"] == 45
    _, out, _ = _sweep(capsys, "export", study, "--storage", url, "--format", "csv", "--threshold", "0.92")
    assert pd.read_csv(io.StringIO(out), dtype={"label": str}).set_index("label").loc["10", "threshold_epoch"] == 43


def test_status_says_when_the_best_run_never_reached_the_threshold(post_study, capsys):
    import optuna

    url, study, _ = post_study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=url, study_name=study).set_user_attr("report_threshold", 0.99)
    code, out, _ = _sweep(capsys, "status", study, "--storage", url)
    assert code == 0 and "Best run so far: 10" in out and "never ≥ 0.99" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "nope"], "unknown study 'nope' in sqlite:///"),
        (["export", "table1", "--threshold", "1.5"], "--threshold 1.5: must be"),
        (["export", "table1", "--swing-start", "-1"], "--swing-start -1: must be a number of epochs, 0 or more"),
        (["plot", "nope"], "unknown study 'nope'"),
        (
            ["plot", "table1", "--runs", "0,99"],
            "--runs: no run '99' in study 'table1'; its labels: 10, 3B, 0, 2, 11, 3A",
        ),
        (["status", "nope"], "unknown study 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    post_study, capsys, tmp_path, monkeypatch, argv, message
):
    url, _, _ = post_study
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    output = (
        ["--output", "out.md"] if argv[0] == "export" else ["--output", "plots"] if argv[0] == "plot" else []
    )
    code, out, err = _sweep(capsys, *argv, "--storage", url, *output)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err
    if argv[1] == "nope":
        assert "its studies: table1" in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "storage, message",
    [
        ("sweeps.db", "not a database URL"),
        ("sqlite:///missing.db", "no database file missing.db"),
        ("mysql://u@h/db", "is not supported"),
    ],
)
def test_a_bad_storage_url_is_one_line_exit_2_and_nothing_written(
    capsys, tmp_path, monkeypatch, storage, message
):
    monkeypatch.chdir(tmp_path)
    for verb in (["export", "s", "--output", "out.md"], ["plot", "s"], ["status"]):
        code, out, err = _sweep(capsys, *verb, "--storage", storage)
        assert (code, out, err.count("\n")) == (2, "", 1) and message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.long
def test_plot_writes_a_png_per_run_and_per_study(post_study, capsys, tmp_path):
    url, study, runs = post_study
    folder = tmp_path / "plots"
    code, out, _ = _sweep(capsys, "plot", study, "--storage", url, "--output", str(folder))
    assert code == 0 and "wrote" in out
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(
        [f"table1-run-{run['label']}.png" for run in runs]
        + ["table1-heatmaps.png", "table1-val_loss.png", "table1-ema-weights.png"]
    )
    assert all((folder / name).read_bytes().startswith(PNG) for name in names)


def test_plot_selected_runs_on_a_log_scale(post_study, capsys, tmp_path):
    url, study, _ = post_study
    folder = tmp_path / "some"
    assert (
        _sweep(capsys, "plot", study, "--storage", url, "--runs", "3A,10", "--output", str(folder), "--log")[
            0
        ]
        == 0
    )
    assert sorted(path.name for path in folder.iterdir()) == [
        "table1-ema-weights.png",
        "table1-heatmaps.png",
        "table1-run-10.png",
        "table1-run-3A.png",
        "table1-val_loss.png",
    ]


def test_status_lists_studies_and_a_running_studys_eta(post_study, capsys):
    url, study, runs = post_study
    with ResultStore(url) as store:
        waiting = next(run for run in runs if run["label"] == "13")["run_id"]
        store.claim_run(waiting, worker="worker-7", host="gpu-1", stale_after=60, max_attempts=3)
        for epoch in (1, 2, 3):
            store.record_epoch(
                waiting,
                {
                    "epoch": epoch,
                    "loss": 1.0,
                    "acc": 0.5,
                    "val_loss": 1.2,
                    "val_acc": 0.61,
                    "lr": 8e-4,
                    "seconds": 20.0,
                    "images_per_second": 2500.0,
                },
            )
    code, out, _ = _sweep(capsys, "status", "--storage", url)
    assert code == 0 and "table1" in out and "running" in out and "complete" in out
    code, out, _ = _sweep(capsys, "status", study, "--storage", url)
    assert code == 0
    assert "Best run so far: 10" in out and "worker-7@gpu-1" in out and "3/60" in out
    assert "ETA 19m 00s: 57 epochs left, 1 running" in out


def test_results_load_and_load_epochs(post_study):
    url, study, runs = post_study
    frame = results.load(url, study)
    # The file's order (as registered), and the post's label order on request.
    assert list(frame["label"]) == [run["label"] for run in runs]
    assert list(results.load(url, study, sort="label")["label"]) == ["0", "1", "2", "3A", "3B", "10", "11", "12", "13"]
    assert {
        "threshold_epoch",
        "threshold_reached",
        "val_acc_best",
        "delta_val_loss",
        "weight_decay",
        "learning_rate",
        "lr_schedule",
        "state",
    } <= set(frame.columns)
    assert results.load(url, study, threshold=0.93).set_index("label").loc["10", "threshold_epoch"] == 45
    epochs = results.load_epochs(url, study)
    assert len(epochs) == sum(len(run["records"]) for run in runs)
    assert list(epochs.columns[:4]) == ["run_id", "label", "run_key", "trial_number"]
    from sweeps.errors import InputError

    with pytest.raises(InputError, match="unknown study"):
        results.load(url, "nope")


def test_results_load_reads_the_old_column_names_with_a_deprecation_warning(post_study):
    import warnings

    url, study, _ = post_study
    frame = results.load(url, study)
    # The new names only: an old one is no column of its own, nor does it warn.
    assert not {"acc_val", "reached", "final_loss", "epochs_to_0_92", "reduction_model"} & set(frame.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame["val_acc_at_threshold"], frame.label, frame[["label", "threshold_epoch"]]  # noqa: B018
    ways = {
        "item": lambda f: f["acc_val"],
        "attribute": lambda f: f.acc_val,
        "get": lambda f: f.get("acc_val"),
        "list": lambda f: f[["label", "acc_val"]]["val_acc_at_threshold"],
    }
    for way, read in ways.items():
        with pytest.warns(DeprecationWarning, match="'acc_val' is now 'val_acc_at_threshold'"):
            old = read(frame)
        pd.testing.assert_series_equal(old, frame["val_acc_at_threshold"], check_names=False, obj=way)
    with pytest.warns(DeprecationWarning, match="'epochs_to_0_92' is now 'threshold_epoch_0_92'"):
        assert frame.set_index("label")["epochs_to_0_92"]["10"] == 43
    with pytest.warns(DeprecationWarning, match="'reached' is now 'threshold_reached'"):
        assert "reached" in frame and list(frame["reached"]) == list(frame["threshold_reached"])
    with pytest.warns(DeprecationWarning, match="'final_loss' is now 'loss_min'"):
        assert frame["final_loss"].equals(frame["loss_min"])
    with pytest.raises(KeyError):
        frame["no_such_column"]  # noqa: B018
    assert type(frame[frame["state"] == "complete"]).__name__ == "RunFrame"  # a selection reads them too


@pytest.mark.long
def test_an_export_makes_a_constant_number_of_queries(tmp_path, build_study):
    """Not one query per run: 3 runs and 60 runs cost the same queries."""
    counts = []
    for copies in (1, 20):
        url = f"sqlite:///{tmp_path / f'q{copies}.db'}"
        build_study(url, "s", runs=3, copies=copies)
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args, statements=statements):
            statements.append(statement)

        event.listen(Engine, "before_cursor_execute", count)
        try:
            export_command(
                "s",
                storage=url,
                format="csv",
                style="raw",
                output=str(tmp_path / "out.csv"),
                threshold=None,
                epochs=False,
            )
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert len(pd.read_csv(tmp_path / "out.csv")) == 3 * copies
        counts.append(len(statements))
    # schema check 2, study list 1, Optuna tables 2, runs 1, epochs 1
    assert counts[0] == counts[1] <= 8


def test_results_imports_neither_keras_nor_the_runner_and_stays_light():
    """`results` reads the epoch fields from the trainer's public names (their one
    definition) and nothing else of it: no Keras, no runner."""
    code = (
        "import sys, results, results.store.result_store, results.report.tables, results.report.export, results.report.frames, "
        "results.report.commands, results.report.status, results.report.metrics, results.store.schema\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sweep_runner', 'keras', 'tensorflow')]\n"
        "assert not bad, bad\n"
        "assert 'matplotlib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    light = "import sys, results; assert not {'pandas', 'matplotlib', 'sqlalchemy'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", light], check=True)
    # What it imports, read from the source: tests/test_layering.py.


def test_a_search_study_before_its_trials_are_asked(sqlite_url, capsys, tmp_path):
    """The runner registers search slots `#1`, `#2` with an empty configuration, and
    fills each in when Optuna asks; every verb works on such a study meanwhile."""
    with ResultStore(sqlite_url) as store:
        for k in (1, 2):
            store.register_run("search", f"search-{k}", label=f"#{k}", comment=None, config={})
    for verb in (
        ["export", "search"],
        ["export", "search", "--style", "raw", "--format", "csv"],
        ["status", "search"],
        ["plot", "search", "--output", str(tmp_path / "p")],
    ):
        code, out, err = _sweep(capsys, *verb, "--storage", sqlite_url)
        assert (code, err) == (0, ""), verb
    _, out, _ = _sweep(capsys, "export", "search", "--storage", sqlite_url)
    assert out.splitlines()[2].startswith("| #1 |") and "1.e-3" not in out
