"""The post's table, the raw and epoch tables, and their exports, on a post-like study."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from results.report.export import frame_text, latex_escape, post_text, summary_text
from results.report.frames import read_study
from results.report.labels import label_order, sort_labels
from results.store.result_store import ResultStore
from results.report.tables import (
    POST_COLUMNS,
    epochs_table,
    format_loss,
    format_post,
    post_table,
    raw_table,
    summary_table,
)

LABEL_ORDER = ["0", "1", "2", "3A", "3B", "10", "11", "12", "13"]
#: The order the fixture registers its runs in: the tables keep it (the file's order).
FILE_ORDER = ["10", "3B", "0", "2", "11", "3A", "1", "12", "13"]


@pytest.fixture
def frames(post_study):
    url, study, runs = post_study
    with ResultStore(url, create=False) as store:
        run_frame, epochs = read_study(store, study)
    return run_frame, epochs, {run["label"]: run for run in runs}


def test_labels_in_the_posts_order():
    assert sort_labels(["11", "3B", "10", "0", "x", "3A", "2", "1", "4", "B"]) == [
        "0",
        "1",
        "2",
        "3A",
        "3B",
        "4",
        "10",
        "11",
        "x",
        "B",
    ]
    assert label_order(["2", "10", "1"]) == [2, 0, 1]
    # A grid's labels keep the grid's order: α 2e-3 after α 8e-4 is no text order.
    grid = ["λ=0.05 α=8.e-4", "λ=0.05 α=2.e-3", "λ=0.20 α=8.e-4", "λ=0.20 α=2.e-3"]
    assert sort_labels(grid) == grid


@pytest.mark.fuzz
@given(st.lists(st.from_regex(r"[0-9]{1,3}[A-C]?|[a-z]{1,3}", fullmatch=True), max_size=20))
def test_label_order_is_a_total_order_on_numbered_labels(labels):
    ordered = sort_labels(labels)
    numbered = [label for label in ordered if label[0].isdigit()]
    assert sort_labels([l for l in reversed(labels) if l[0].isdigit()]) == numbered
    assert ordered[: len(numbered)] == numbered  # numbered labels first
    assert ordered[len(numbered):] == [l for l in labels if not l[0].isdigit()]  # as given
    assert [int(label.rstrip("ABC")) for label in numbered] == sorted(
        int(label.rstrip("ABC")) for label in numbered
    )


def test_post_table_columns_rows_and_values(frames):
    run_frame, epochs, _ = frames
    table = post_table(run_frame, epochs)
    assert list(table.columns) == [*POST_COLUMNS, "threshold_reached"]
    assert list(table["#"]) == FILE_ORDER
    row = table.set_index("#")
    assert (row.loc["3B", "epoch"], row.loc["3B", "epo best"], row.loc["3B", "val acc best"]) == (
        57,
        58,
        0.9262,
    )
    assert bool(row.loc["3B", "threshold_reached"]) and not bool(row.loc["0", "threshold_reached"])
    # Run 0 never reaches 0.92: its first epoch at its highest 0.01 level (0.91).
    assert (row.loc["0", "epoch"], row.loc["0", "acc_val"]) == (47, 0.9123)
    assert (row.loc["0", "epo best"], row.loc["0", "val acc best"]) == (60, 0.9129)
    assert row.loc["11", "final loss"] == 2.516e-4
    assert row.loc["10", "final val loss"] == pytest.approx(0.288)
    assert row.loc["12", "α"] == 4e-4 and row.loc["1", "λ"] == 5e-4
    assert pd.isna(row.loc["13", "epoch"]) and pd.isna(row.loc["13", "val acc best"])


def test_the_posts_number_formats(frames):
    run_frame, epochs, _ = frames
    text = format_post(post_table(run_frame, epochs)).set_index("#")
    assert text.loc["0", "epoch"] == "(47)" and text.loc["0", "acc_val"] == "(0.91230)"
    assert text.loc["3B", "epoch"] == "57" and text.loc["3B", "acc_val"] == "0.92164"
    assert text.loc["3B", "acc"] == "0.9916" and text.loc["3B", "val acc best"] == "0.92620"
    assert text.loc["11", "final loss"] == "2.5160e-04" and text.loc["10", "final val loss"] == "0.2880"
    assert (text.loc["1", "α"], text.loc["1", "λ"], text.loc["10", "λ"], text.loc["0", "λ"]) == (
        "8.e-4",
        "5.e-4",
        "0.30",
        "0.0",
    )
    assert (text.loc["1", "shift"], text.loc["1", "l2"], text.loc["1", "m"]) == ("0.07", "0.0", "0.98")
    assert text.loc["1", "reduction model"] == "[8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]"
    # A relative schedule (factors η) is written in learning rates η·α.
    assert text.loc["12", "reduction model"] == "[4.e-4, 20][8.e-5, 40][1.e-5, 50][2.e-6, 60]"
    assert text.loc["13", "epoch"] == "" and text.loc["13", "acc_val"] == ""
    assert format_loss(0.0251) == "0.0251" and format_loss(float("nan")) == ""


def test_the_threshold_moves_the_epoch_column(frames):
    run_frame, epochs, _ = frames
    table = post_table(run_frame, epochs, threshold=0.93).set_index("#")
    assert table.loc["10", "epoch"] == 45 and bool(table.loc["10", "threshold_reached"])
    assert table.loc["3B", "epoch"] == 57 and not bool(table.loc["3B", "threshold_reached"])  # its 0.92 level
    summary = summary_table(run_frame, epochs, threshold=0.93).set_index("label")
    assert summary.loc["10", "threshold_epoch"] == 45 and pd.isna(summary.loc["3B", "threshold_epoch"])


def test_markdown_renders_as_a_table(frames):
    run_frame, epochs, _ = frames
    lines = post_text(post_table(run_frame, epochs), "md").splitlines()
    assert lines[0] == "| " + " | ".join(POST_COLUMNS) + " |"
    assert lines[1].startswith("| --- | ---: |")
    assert len(lines) == 2 + len(LABEL_ORDER)
    assert all(line.count(" | ") == len(POST_COLUMNS) - 1 for line in lines)
    assert lines[4].startswith("| 0 | (47) | (0.91230) |")


def test_the_summary_names_the_posts_columns_and_leaves_unreached_empty(frames):
    from results.report.columns import SUMMARY, post_headers

    run_frame, epochs, _ = frames
    table = summary_table(run_frame, epochs)
    assert list(table.columns) == list(SUMMARY)
    post = post_table(run_frame, epochs)
    assert list(post.columns[:-1]) == [post_headers()[name] for name in SUMMARY if name in post_headers()]
    row = table.set_index("label")
    assert row.loc["3B", "threshold_epoch"] == 57 and round(row.loc["3B", "val_acc_at_threshold"], 5) == 0.92164
    # Run 0 never reached 0.92: empty, where the post's table shows its 0.91 level, (47).
    assert pd.isna(row.loc["0", "threshold_epoch"]) and pd.isna(row.loc["0", "val_acc_at_threshold"])
    assert pd.isna(row.loc["0", "acc_at_threshold"]) and not row.loc["0", "threshold_reached"]
    assert (row.loc["0", "epoch_best"], row.loc["0", "val_acc_best"]) == (60, 0.9129)
    assert row.loc["11", "loss_min"] == 2.516e-4 and row.loc["12", "learning_rate"] == 4e-4
    assert row.loc["1", "lr_schedule"] == "[8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]"
    text = summary_text(table, "md").splitlines()
    assert text[0].startswith("| label | threshold_epoch | val_acc_at_threshold | acc_at_threshold | epoch_best |")
    assert text[4].startswith("| 0 |  |  |  | 60 | 0.91290 |")


def test_summary_csv_and_json_read_back_with_unreached_empty(frames):
    run_frame, epochs, _ = frames
    table = summary_table(run_frame, epochs)
    csv = summary_text(table, "csv")
    assert all(name.isascii() and " " not in name for name in csv.splitlines()[0].split(","))
    back = pd.read_csv(io.StringIO(csv), dtype={"label": str})
    assert list(back.columns) == list(table.columns) and list(back["label"]) == FILE_ORDER
    for name in ("threshold_epoch", "val_acc_at_threshold", "epoch_best", "val_acc_best", "loss_min", "learning_rate"):
        pd.testing.assert_series_equal(back[name].astype("float64"), table[name].astype("float64"), check_names=False)
    assert pd.isna(back.set_index("label").loc["0", "threshold_epoch"]) and back["threshold_reached"].dtype == bool
    records = json.loads(summary_text(table, "json"))
    assert records[2]["label"] == "0" and records[2]["threshold_epoch"] is None
    assert records[2]["threshold_reached"] is False and records[0]["threshold_epoch"] == 43
    assert records[-1]["val_acc_best"] is None
    with pytest.raises(ValueError, match="md, html, latex"):
        post_text(post_table(run_frame, epochs), "csv")


def test_raw_csv_reads_back_to_the_same_values(frames):
    run_frame, epochs, runs = frames
    table = raw_table(run_frame, epochs)
    back = pd.read_csv(io.StringIO(frame_text(table, "csv")), dtype={"label": str})
    assert list(back.columns) == list(table.columns)
    for column in table.columns:
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column]):
            pd.testing.assert_series_equal(
                back[column].astype("float64"), table[column].astype("float64"), check_names=False
            )
        elif pd.api.types.is_bool_dtype(table[column]):
            assert back[column].tolist() == table[column].tolist()
    row = table.set_index("label")
    assert row.loc["10", "delta_val_loss"] == pytest.approx(11.3)
    assert (row.loc["10", "threshold_epoch_0_92"], row.loc["10", "threshold_epoch_0_93"]) == (43, 45)
    assert pd.isna(row.loc["0", "threshold_epoch_0_92"]) and row.loc["0", "epoch_level"] == 47
    assert row.loc["12", "schedule_relative"] and row.loc["12", "learning_rate"] == 4e-4
    assert row.loc["13", "state"] == "waiting" and row.loc["13", "epochs_done"] == 0
    assert row.loc["3B", "train_seconds"] == 600.0 and row.loc["3B", "duration"] >= 0
    assert row.loc["3B", "run_key"] == runs["3B"]["config"].run_key


def test_epoch_csv_reads_back_exactly(frames):
    run_frame, epochs, runs = frames
    table = epochs_table(run_frame, epochs)
    back = pd.read_csv(io.StringIO(frame_text(table, "csv")), dtype={"label": str})
    assert len(back) == sum(len(run["records"]) for run in runs.values())
    for column in ("epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second"):
        pd.testing.assert_series_equal(
            back[column].astype("float64"), table[column].astype("float64"), check_names=False
        )
    assert back["label"].drop_duplicates().tolist() == FILE_ORDER[:-1]  # 13 has no epochs
    first = back[back["label"] == "10"].iloc[5]
    assert first["val_loss"] == 12.0 and first["epoch"] == 6


def test_latex_html_and_json_escape_what_they_must(frames):
    run_frame, epochs, _ = frames
    table = post_table(run_frame, epochs)
    latex = post_text(table, "latex")
    assert r"\# & epoch & acc\_val" in latex and r"$\lambda$ & m & $\alpha$" in latex
    assert r"run 0 <$\lambda$>" in latex and latex.rstrip().endswith(r"\end{tabular}")
    assert latex_escape("50% & $x_1") == r"50\% \& \$x\_1"
    html = post_text(table, "html")
    assert "<td>run 0 &lt;λ&gt;</td>" in html and html.count("<tr>") == 1 + len(LABEL_ORDER)
    raw = json.loads(frame_text(raw_table(run_frame, epochs), "json"))
    assert raw[2]["label"] == "0" and raw[2]["threshold_epoch"] is None and raw[2]["threshold_reached"] is False
    assert (raw[2]["epoch_level"], raw[2]["val_acc_level"]) == (47, 0.91)
    assert raw[-1]["val_acc_best"] is None


def test_the_tables_accept_frames_keyed_by_run_key(frames):
    run_frame, epochs, _ = frames
    by_key = post_table(run_frame.drop(columns="run_id"), epochs.drop(columns="run_id"))
    pd.testing.assert_frame_equal(by_key, post_table(run_frame, epochs))


def test_metrics_of_an_empty_study(sqlite_url):
    from results.report import read_study
    from results.store import ResultStore

    with ResultStore(sqlite_url) as store:
        runs, epochs = read_study(store, "nothing yet")
    empty = raw_table(runs, epochs)
    assert len(empty) == 0 and {"label", "threshold_epoch", "val_acc_best"} <= set(empty.columns)


def test_the_runner_can_print_the_post_table_from_the_public_api(post_study, frames):
    import results

    url, study, _ = post_study
    run_frame, epochs, _ = frames
    from_api = post_table(results.load(url, study), results.load_epochs(url, study))
    pd.testing.assert_frame_equal(from_api, post_table(run_frame, epochs))
    summary = summary_table(results.load(url, study), results.load_epochs(url, study))
    pd.testing.assert_frame_equal(summary, summary_table(run_frame, epochs))


def test_sort_orders_the_runs_and_keeps_the_files_order_on_ties(frames):
    from results.report.tables import SORTS, sort_runs

    run_frame, epochs, _ = frames
    labels = lambda by: list(sort_runs(run_frame, epochs, by)["label"])  # noqa: E731
    assert labels("file") == FILE_ORDER and labels("label") == LABEL_ORDER
    assert labels("val_acc_best")[:2] == ["10", "12"] and labels("val_acc_best")[-1] == "13"  # no epochs: last
    # λ 0.2 twice: 12 before 13 as in the file; λ 0 first.
    assert labels("weight_decay") == ["0", "1", "2", "3A", "3B", "12", "13", "10", "11"]
    table = post_table(sort_runs(run_frame, epochs, "threshold_epoch"), epochs)
    assert list(table["#"])[-1] == "13"
    with pytest.raises(ValueError, match="must be one of file, label"):
        sort_runs(run_frame, epochs, "bogus")
    assert "delta_val_loss" in SORTS


def test_a_study_without_runs_gives_every_table_empty_with_its_headers():
    from results.report.columns import EPOCHS, RUN_COLUMNS

    runs = pd.DataFrame(columns=[c.name for c in RUN_COLUMNS])
    epochs = pd.DataFrame(columns=["run_id", *(c.name for c in EPOCHS)])
    post = format_post(post_table(runs, epochs))
    assert post.empty and list(post.columns) == list(POST_COLUMNS)
    assert summary_table(runs, epochs).empty and raw_table(runs, epochs).empty
    assert post_text(post_table(runs, epochs), "md").count("\n") >= 1  # the header still printed
