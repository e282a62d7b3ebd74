"""What the report answers, without a browser: the overlay's style per run, the parallel
coordinates' axes, the per-value summary, and a note where a plot has nothing to show.
(`test_report_answers_browser` checks that they render.)"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from report_studies import figures_of, make_study
from results.report.page_json import script_json
from results.report.parallel import parallel_figure
from results.report.run_styles import run_styles
from results.report.value_summary import value_rows
from sweep_runner.cli import main


def _grid(lambdas=(0.0, 0.05, 0.1, 0.2), alphas=(4e-4, 8e-4, 1.6e-3), seeds=(0, 1)) -> pd.DataFrame:
    rows = [
        {"run_id": i + 1, "label": f"{i}", "weight_decay": lam, "learning_rate": alpha, "seed": seed,
         "val_acc_best": 0.9 + 0.01 * lam_i - 0.002 * alpha_i + 0.001 * seed}
        for i, ((lam_i, lam), (alpha_i, alpha), seed) in enumerate(
            itertools.product(enumerate(lambdas), enumerate(alphas), seeds))
    ]
    return pd.DataFrame(rows)


@pytest.mark.timeout(60)
def test_every_swept_pair_has_its_own_style_and_the_third_key_is_in_the_hover() -> None:
    runs = _grid()
    styling = run_styles(runs, ["seed", "learning_rate", "weight_decay"])
    # λ has the most values (4), then α (3): they are styled; the seed (2) is named only.
    assert (styling.colour_key, styling.dash_key, styling.rest) == ("weight_decay", "learning_rate", ("seed",))
    assert styling.caption() == "colour: λ · dash and marker: α · named in the hover: seed"
    looks: dict[tuple[float, float], set[tuple[str, str, str]]] = {}
    for row in runs.to_dict("records"):
        style = styling.styles[row["run_id"]]
        looks.setdefault((row["weight_decay"], row["learning_rate"]), set()).add(
            (style.colour, style.dash, style.marker))
        assert f"seed {row['seed']}" in style.values and style.name.startswith(f"{row['label']} (λ ")
    # Each (λ, α) one look, and no two alike: 12 looks for 12 pairs.
    assert all(len(found) == 1 for found in looks.values())
    assert len({next(iter(found)) for found in looks.values()}) == len(looks) == 12
    # With α the most varied, the colour follows α; a run whose α is unknown is grey.
    few = _grid(lambdas=(0.05, 0.2), alphas=(1e-4, 4e-4, 8e-4), seeds=(0,))
    few.loc[0, "learning_rate"] = math.nan
    styling = run_styles(few, ["weight_decay", "learning_rate"])
    assert (styling.colour_key, styling.dash_key) == ("learning_rate", "weight_decay")
    assert styling.styles[1].colour == "#888888" and styling.styles[1].values.startswith("λ 0.05 · α ?")


@pytest.mark.timeout(60)
def test_parallel_coordinates_put_lambda_and_alpha_on_log_axes_and_leave_out_nan() -> None:
    runs = _grid(lambdas=(0.0, 0.05, 0.2), alphas=(4e-4, 1.6e-3), seeds=(0,))
    runs["schedule"] = ["[8.e-4, 20]", "<b>x</b>"] * 3
    runs.loc[1, "val_acc_best"] = math.nan  # diverged at once
    runs.loc[4, "val_acc_best"] = math.inf
    parallel = parallel_figure(runs, ["weight_decay", "learning_rate", "schedule"])
    assert parallel.left_out == 2
    trace = parallel.figure["data"][0]
    assert trace["type"] == "parcoords"
    lam, alpha, schedule, best = trace["dimensions"]
    assert lam["label"] == "λ (log10)" and alpha["label"] == "α (log10)"
    # λ = 0 sits a decade below 0.05; the ticks say the values as the post writes them.
    zero = math.log10(0.05) - 1
    assert lam["values"] == pytest.approx([zero, math.log10(0.05), math.log10(0.05), math.log10(0.2)])
    assert lam["ticktext"] == ["0.0", "0.05", "0.20"] and lam["tickvals"][0] == pytest.approx(zero)
    assert alpha["values"] == pytest.approx([math.log10(4e-4)] * 2 + [math.log10(1.6e-3)] * 2)
    assert schedule["ticktext"] == ["[8.e-4, 20]", "&lt;b&gt;x&lt;/b&gt;"] and schedule["values"] == [0, 0, 1, 1]
    kept = runs["val_acc_best"].drop([1, 4]).tolist()
    assert best["values"] == pytest.approx(kept) and trace["line"]["color"] == pytest.approx(kept)
    script_json(parallel.figure)  # strict JSON: no NaN left
    nothing = parallel_figure(runs.assign(val_acc_best=math.nan), ["weight_decay"])
    assert nothing.figure is None and nothing.note == "no run has a best val_acc yet"
    assert parallel_figure(runs, []).figure is None


@pytest.mark.timeout(60)
def test_per_value_summary_is_best_and_mean_over_the_other_axes() -> None:
    runs = _grid(lambdas=(0.05, 0.2), alphas=(4e-4, 8e-4, 1.6e-3), seeds=(0,))
    runs.loc[5, "val_acc_best"] = math.nan  # λ 0.2, α 1.6e-3 diverged at once
    table = value_rows(runs, "weight_decay")
    assert table["value"].tolist() == ["0.05", "0.20"] and table["runs"].tolist() == [3, 2]
    low, high = runs["val_acc_best"][:3], runs["val_acc_best"][3:5]
    assert table["best"].tolist() == pytest.approx([low.max(), high.max()])
    assert table["mean"].tolist() == pytest.approx([low.mean(), high.mean()])
    assert table["best_label"].tolist() == [runs["label"][low.idxmax()], runs["label"][high.idxmax()]]
    alphas = value_rows(runs, "learning_rate")
    assert alphas["value"].tolist() == ["4.e-4", "8.e-4", "1.6e-3"] and alphas["runs"].tolist() == [2, 2, 1]
    assert alphas["mean"][2] == pytest.approx(runs["val_acc_best"][2])


def _report(url: str, study: str, tmp_path: Path) -> tuple[str, dict]:
    output = tmp_path / f"{study}.html"
    assert main(["report", study, "--storage", url, "--output", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    return page, figures_of(page)


@pytest.mark.timeout(120)
def test_the_page_overlays_every_run_and_folds_the_sweep_file(study_url: str, tmp_path: Path) -> None:
    runs = make_study(study_url, "answers", lambdas=(0.05, 0.1, 0.2), epochs=6, copies=2, waiting=1, ema=True)
    page, figures = _report(study_url, "answers", tmp_path)
    trained = [run for run in runs if run["epochs"]]
    overlay = figures["val-acc"]
    raw = [t for t in overlay["data"] if t["yaxis"] == "y"]
    ema = [t for t in overlay["data"] if t["yaxis"] == "y2"]
    assert len(raw) == len(ema) == len(trained)
    # One legend entry per run, toggling both its lines.
    assert [t["legendgroup"] for t in raw] == [t["legendgroup"] for t in ema]
    assert all(t["showlegend"] for t in raw) and not any(t["showlegend"] for t in ema)
    # The two seeds of a (λ, α) share a look; any two (λ, α) differ; the seed is in the hover.
    looks = {(run["weight_decay"], run["learning_rate"]): set() for run in trained}
    for run, trace in zip(trained, raw, strict=True):
        looks[(run["weight_decay"], run["learning_rate"])].add(
            (trace["line"]["color"], trace["line"]["dash"], trace["marker"]["symbol"]))
        assert f"seed {run['seed']}" in trace["customdata"][0]
    assert all(len(look) == 1 for look in looks.values()) and len({*map(frozenset, looks.values())}) == 6
    # The diverged run's NaN epochs are gaps; EMA lines sit 0.005 above the raw ones.
    assert raw[1]["y"][3:] == [None, None, None]
    assert ema[0]["y"] == pytest.approx([y + 0.005 for y in raw[0]["y"]])
    labels = [(s["y0"], s["label"]["text"]) for s in overlay["layout"]["shapes"]]
    assert labels == [(0.92, "0.92"), (0.93, "0.93")] * 2
    run_shapes = figures[f"run-{trained[0]['run_id']}"]["layout"]["shapes"]
    assert [s["label"]["text"] for s in run_shapes] == ["0.92", "0.93"]
    assert figures["parallel"]["data"][0]["type"] == "parcoords" and "per-value" in figures
    assert "colour: λ · dash and marker: α · named in the hover: epochs, seed" in page
    # The sweep file is there, folded: the table comes first on the screen.
    assert re.search(r'<details id="sweep-file"><summary>', page)
    assert 'id="runs-filter"' in page
    assert all(figure["layout"]["uirevision"] == key for key, figure in figures.items())


@pytest.mark.timeout(120)
def test_a_plot_with_nothing_to_show_says_so(study_url: str, tmp_path: Path) -> None:
    import optuna

    make_study(study_url, "unreached", epochs=4)
    optuna.load_study(study_name="unreached", storage=study_url).set_user_attr("report_threshold", 0.99)
    page, figures = _report(study_url, "unreached", tmp_path)
    assert "sweep-0" in figures and "sweep-1" not in figures
    assert ('<p class="note" data-empty="sweep-1">no run reached val_acc ≥ 0.99: no threshold epoch to show</p>'
            in page)
    make_study(study_url, "empty", lambdas=(), waiting=2)
    page, figures = _report(study_url, "empty", tmp_path)
    assert [key for key in figures if not key.startswith("run-")] == []
    for key, note in (("per-value", "no run has a val_acc yet"), ("parallel", "no run has a best val_acc yet"),
                      ("val-acc", "no run has a finite val_acc yet"), ("val-loss", "no run has a finite val_loss yet")):
        assert f'<p class="note" data-empty="{key}">{note}</p>' in page, key
