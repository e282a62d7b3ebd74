"""`sweep report` without a browser: the page's text, its data, its size, bad input."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pytest

from report_studies import HOSTILE, figures_of, make_study
from results.report.page_json import script_code, script_json
from sweep_runner.cli import main

@pytest.mark.timeout(120)
def test_script_json_is_strict_json_that_cannot_end_its_element() -> None:
    value = {
        "label": "</script><!--<script>", "nan": math.nan, "inf": [math.inf, -math.inf, 1.5], "ls": "a\u2028b"
    }
    text = script_json(value)
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"label": "</script><!--<script>", "nan": None, "inf": [None, None, 1.5], "ls": "a\u2028b"}
    assert script_code('var s = "</SCRIPT>";') == 'var s = "<\\/SCRIPT>";'


@pytest.mark.timeout(120)
def test_report_escapes_user_text_and_embeds_plotly_once(study_url: str, tmp_path: Path, capsys) -> None:
    runs = make_study(study_url, "lam_alpha", waiting=1)
    output = tmp_path / "page.html"
    assert main(["report", "lam_alpha", "--storage", study_url, "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote the report of lam_alpha to {output.resolve()}"
    page = output.read_text(encoding="utf-8")
    # The hostile label, the description and the sweep file show as text, never as markup.
    assert HOSTILE not in page and "<b>bold?</b>" not in page
    assert html.escape(HOSTILE) in page and html.escape("</script><b>bold?</b> & more") in page
    # Scripts: the data, plotly.js and ours; nothing fetched from anywhere.
    assert page.count("<script") == 3 and page.count("</script>") == 3
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:2000]) == 1
    # Outside plotly.js (whose strings hold links of its own), no address at all: the
    # browser test checks that nothing is requested.
    ours = page.replace(script_code(get_plotlyjs()), "")
    assert not re.search(r"https?://|\bsrc=|<link", ours)
    # One table row per run, each label a link to its run's section.
    assert page.count('<tr class="run') == len(runs)
    for run in runs:
        assert f'<a href="#run-{run["run_id"]}">{html.escape(run["label"])}</a>' in page
        assert f'<section class="run" id="run-{run["run_id"]}">' in page
    # A file anyone may read: the page is meant to be shared.
    assert output.stat().st_mode & 0o044 == 0o044


@pytest.mark.timeout(120)
def test_report_of_a_diverged_run_keeps_its_gaps_as_nulls(study_url: str, tmp_path: Path) -> None:
    runs = make_study(study_url, "diverging", epochs=6)
    output = tmp_path / "page.html"
    assert main(["report", "diverging", "--storage", study_url, "--output", str(output)]) == 0
    figures = figures_of(output.read_text(encoding="utf-8"))
    diverged = figures[f"run-{runs[1]['run_id']}"]["data"]
    by_name = {trace["name"]: trace for trace in diverged}
    # Epochs 4-6 are NaN (val_acc) and infinite (loss): gaps, and the earlier epochs intact.
    assert by_name["val_acc"]["y"][3:] == [None, None, None] and None not in by_name["val_acc"]["y"][:3]
    assert by_name["loss"]["y"][3:] == [None, None, None]
    assert by_name["val_acc"]["x"] == [1, 2, 3, 4, 5, 6]


def _set_epochs(url: str, run_id: int, **values: float) -> None:
    """Sets columns of every stored epoch of a run."""
    from sqlalchemy import update

    from results.store.models import EPOCHS
    from results.store.result_store import ResultStore

    with ResultStore(url) as store, store.engine.begin() as connection:
        connection.execute(update(EPOCHS).where(EPOCHS.c.run_id == run_id).values(**values))


@pytest.mark.timeout(120)
def test_report_figures_follow_what_was_swept(study_url: str, tmp_path: Path) -> None:
    grid_runs = make_study(study_url, "grid")
    _set_epochs(study_url, grid_runs[0]["run_id"], val_acc_bn=0.91)
    one_runs = make_study(study_url, "one", lambdas=(0.05, 0.1, 0.2), alphas=(1e-3,), hostile=False, diverged=False)
    _set_epochs(study_url, one_runs[2]["run_id"], val_acc_ema_bn=0.97)  # λ 0.2's averages, BatchNorm-true
    grid, one = tmp_path / "grid.html", tmp_path / "one.html"
    assert main(["report", "grid", "--storage", study_url, "--output", str(grid)]) == 0
    assert main(["report", "one", "--storage", study_url, "--output", str(one)]) == 0
    heatmaps = [f for k, f in figures_of(grid.read_text(encoding="utf-8")).items() if k.startswith("sweep-")]
    assert [f["data"][0]["type"] for f in heatmaps] == ["heatmap", "heatmap", "heatmap"]
    assert heatmaps[2]["layout"]["title"]["text"] == "BatchNorm-true best val_acc"
    assert heatmaps[2]["data"][0]["z"] == [[pytest.approx(0.91), None], [None, None]]  # λ 0.05, α 8e-4 only
    accuracy_scales = [(f["data"][0]["zmin"], f["data"][0]["zmax"]) for f in (heatmaps[0], heatmaps[2])]
    assert accuracy_scales[0] == accuracy_scales[1] and "zmin" not in heatmaps[1]["data"][0]  # one colour, one val_acc
    assert heatmaps[0]["data"][0]["y"] == ["0.05", "0.20"] and heatmaps[0]["data"][0]["x"] == ["8.e-4", "2.e-3"]
    # Best val_acc of (λ 0.2, α 2e-3), run 3: 0.935; the diverged run's cell keeps its best before NaN.
    assert heatmaps[0]["data"][0]["z"][1][1] == pytest.approx(0.935)
    against = [f for k, f in figures_of(one.read_text(encoding="utf-8")).items() if k.startswith("sweep-")]
    assert [f["data"][0]["type"] for f in against] == ["scatter", "scatter"]
    assert against[0]["data"][0]["x"] == ["0.05", "0.10", "0.20"]
    # Beside the raw best val_acc, the best of what was measured besides: here the
    # BatchNorm-true best of the averaged weights, for the one run that has it.
    series = {trace["name"]: trace["y"] for trace in against[0]["data"]}
    assert series["BatchNorm-true, EMA weights"] == [None, None, pytest.approx(0.97)]
    assert "BatchNorm-true" not in series and against[0]["layout"]["showlegend"]
    assert [trace["name"] for trace in against[1]["data"]] == ["first epoch with val_acc ≥ 0.92"]
    assert "against weight_decay" in one.read_text(encoding="utf-8")


@pytest.mark.timeout(120)
def test_a_study_of_30_runs_of_60_epochs_is_under_10_mb(study_url: str, tmp_path: Path) -> None:
    runs = make_study(study_url, "big", lambdas=(0.0, 0.05, 0.1, 0.2, 0.3), alphas=(4e-4, 8e-4, 1.6e-3),
                      copies=2, epochs=60)
    assert len(runs) == 30
    output = tmp_path / "big.html"
    assert main(["report", "big", "--storage", study_url, "--output", str(output)]) == 0
    size = output.stat().st_size
    assert size < 10 * 2**20, f"{size / 2**20:.1f} MiB"
    figures = figures_of(output.read_text(encoding="utf-8"))
    assert sum(key.startswith("run-") for key in figures) == 30


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("page.txt", "--output {o}: must be an .html file (the page is written over it)"),
        ("folder.html", "--output {o}: is a folder; give a file name"),
        ("missing/page.html", "--output {o}: folder {d}/missing does not exist"),
        ("sweeps.html", "--output {o}: is the storage database {d}/sweeps.html: writing it would destroy "
                        "every result; give another file name"),
    ],
)
def test_report_refuses_bad_output_in_one_line(tmp_path: Path, capsys, output: str, message: str) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.html'}"  # a database whose name ends in .html
    make_study(url, "s", epochs=2)
    (tmp_path / "folder.html").mkdir()
    def files() -> set[str]:  # SQLite's own -wal and -shm come and go with its connections
        return {p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))}

    before = files()
    target = str(tmp_path / output)
    assert main(["report", "s", "--storage", url, "--output", target]) == 2
    err = capsys.readouterr().err
    assert err == message.format(o=target, d=tmp_path.resolve()) + "\n"
    assert files() == before
    assert (tmp_path / "sweeps.html").read_bytes().startswith(b"SQLite format 3\x00")  # still the database


@pytest.mark.timeout(120)
def test_report_of_an_unknown_study_names_the_known_ones(study_url: str, tmp_path: Path, capsys) -> None:
    make_study(study_url, "known", epochs=2)
    output = tmp_path / "page.html"
    assert main(["report", "unknown", "--storage", study_url, "--output", str(output)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"unknown study 'unknown' in {study_url}; its studies: known"
    ]
    assert not output.exists()


@pytest.mark.timeout(120)
def test_a_runs_section_states_issue_19s_measurements(study_url: str, tmp_path: Path) -> None:
    """Every measurement of issue 19 is in the report: the epoch columns as curves (a
    panel per kind, each in its own cell of the grid), the run's figures as facts."""
    import math

    from sqlalchemy import update

    from results.store.models import EPOCHS
    from results.store.result_store import ResultStore

    runs = make_study(study_url, "measured", epochs=12, diverged=False)
    run_id = runs[2]["run_id"]
    with ResultStore(study_url) as store, store.engine.begin() as connection:
        for epoch in range(1, 13):
            connection.execute(update(EPOCHS).where(EPOCHS.c.run_id == run_id, EPOCHS.c.epoch == epoch).values(
                xent=1.0 / epoch, val_xent=1.2 / epoch, val_acc_bn=0.6 + 0.02 * epoch, val_loss_bn=0.5,
                weight_norm_other=3.0, dense_kernel_norm=2.0, bn_gamma_norm=4.0, ema_horizon_epochs=1.25,
                weight_norm_invariant=30.5 - epoch, weight_norm_equilibrium=20.0,
                angle_per_step=0.01, angle_equilibrium=0.012, test_acc=0.5 + 0.01 * epoch,
                # A bump of 0.3 at epoch 9 on a level val_loss: a swing of 0.3.
                val_loss=1.0 + (0.3 if epoch == 9 else 0.0),
            ))
    output = tmp_path / "page.html"
    assert main(["report", "measured", "--storage", study_url, "--output", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    figure = figures_of(page)[f"run-{run_id}"]
    names = {trace["name"] for trace in figure["data"]}
    assert {"xent", "val_xent", "weight_norm_other", "dense_kernel_norm", "bn_gamma_norm", "val_acc_bn",
            "angle_per_step", "angle_equilibrium", "weight_norm_invariant", "weight_norm_equilibrium"} <= names
    panels = {trace["yaxis"] for trace in figure["data"]}
    assert figure["layout"]["grid"]["rows"] == math.ceil(len(panels) / 3)
    section = page[page.index(f'id="run-{run_id}"'):]
    section = section[:section.index("</section>")]
    assert "BatchNorm-true best val_acc 0.84000" in section  # 0.6 + 0.02·12
    assert "val_loss swings 0.3 about its trend" in section
    assert "scale-invariant norm within 10 % of its equilibrium from epoch 9" in section  # 21.5/20
    assert "test_acc 0.61000 at the best val_acc" in section  # val_acc's best: epoch 11
    assert "EMA horizon 1.25 epochs" in section
    # A run without them states none of them.
    other = page[page.index(f'id="run-{runs[3]["run_id"]}"'):]
    assert "BatchNorm-true" not in other[:other.index("</section>")]


def test_a_constant_lr_is_drawn_flat_not_zoomed_into_float_noise() -> None:
    """float32's 0.0020000000949949 beside the schedule's 0.002: plotly's autorange made
    ten digits of ticks of it; a log panel that flat is drawn over one decade. A
    schedule that falls keeps plotly's own range."""
    import pandas as pd

    from results.report.figures import run_figure

    epochs = pd.DataFrame({
        "epoch": [1, 2, 3], "loss": [1.0, 0.8, 0.7], "acc": [0.5, 0.6, 0.7], "val_loss": [1.1, 0.9, 0.8],
        "val_acc": [0.4, 0.5, 0.6], "lr": [0.0020000000949949026] * 3,
    })
    constant = {"learning_rate": 2e-3, "epochs": 3, "schedule": None}
    figure = run_figure(epochs, constant, [0.92])
    low, high = figure["layout"]["yaxis3"]["range"]
    assert high - low == pytest.approx(1.0) and 10**low < 2e-3 < 10**high
    falling = run_figure(epochs.assign(lr=[2e-3, 2e-4, 2e-5]), constant, [0.92])
    assert "range" not in falling["layout"]["yaxis3"]
