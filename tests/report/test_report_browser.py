"""The report in a real browser (Debian's chromium under Playwright), as a reader opens
it: from disk, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from report_studies import HOSTILE, MEASURED, Opened, make_study
from sweep_runner.cli import main


@pytest.fixture
def report(study_url: str, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    runs = make_study(study_url, "browse", epochs=7, waiting=1)
    output = tmp_path / "browse.html"
    assert main(["report", "browse", "--storage", study_url, "--output", str(output)]) == 0
    return output, runs


@pytest.mark.timeout(180)
def test_report_opens_offline_with_a_row_per_run_and_every_point(browser: Any, report: tuple) -> None:
    path, runs = report
    opened = Opened(browser, path)
    try:
        labels = opened.labels()
        assert sorted(labels) == sorted(run["label"] for run in runs)
        assert opened.page.locator("#runs-table tbody tr").count() == len(runs)
        # The hostile label is text in the table and the heading, and ran nothing.
        assert HOSTILE in labels
        hostile = next(run for run in runs if run["label"] == HOSTILE)
        assert opened.page.locator(f"#run-{hostile['run_id']} h3").inner_text() == f"run {HOSTILE}"
        assert opened.page.locator(f"#run-{hostile['run_id']} h3 script").count() == 0
        # Each label links to its run's section.
        opened.page.locator("#runs-table tbody th a", has_text=HOSTILE).click()
        assert opened.page.evaluate("location.hash") == f"#run-{hostile['run_id']}"
        for run in runs:
            if not run["epochs"]:
                assert opened.page.locator(f"#run-{run['run_id']} [data-figure]").count() == 0
                continue
            points = opened.plot_points(f"run-{run['run_id']}")
            # Run 2 stored every measurement: its second row of panels shows them all.
            measured = MEASURED if run["label"] == "2" else ()
            for name in ("loss", "val_loss", "acc", "val_acc", "lr", *measured):
                assert points[name] == run["epochs"], (run["label"], name, points)
            assert set(points) == {"loss", "val_loss", "acc", "val_acc", "lr", "schedule (configured)", *measured}
        overlay = opened.plot_points("val-loss")
        assert len(overlay) == sum(1 for run in runs if run["epochs"])
        assert set(overlay.values()) == {7}
        # plotly shows the hostile label in its legend as text, too.
        legend = opened.page.locator('[data-figure="val-loss"] .legendtext').all_text_contents()
        assert f"{HOSTILE} (λ 0.05, α 8.e-4)" in legend
        assert opened.errors == [] and opened.dialogs == [] and opened.requests == []
    finally:
        opened.close()


@pytest.mark.timeout(180)
def test_sorting_a_column_reorders_the_rows(browser: Any, report: tuple) -> None:
    path, runs = report
    opened = Opened(browser, path)
    try:
        post_order = opened.labels()
        best = {run["label"]: run.get("val_acc_best") for run in runs}
        header = opened.page.locator("#runs-table thead button", has_text="val_acc_best")
        header.click()
        ascending = opened.labels()
        with_values = sorted((label for label in post_order if best[label] is not None), key=lambda l: best[l])
        # Ties (equal best val_acc) keep their order; runs without epochs come last.
        assert [best[label] for label in ascending[: len(with_values)]] == [best[label] for label in with_values]
        assert ascending[len(with_values):] == [label for label in post_order if best[label] is None]
        assert ascending != post_order
        header.click()
        descending = opened.labels()
        assert [best[label] for label in descending[: len(with_values)]] == sorted(
            (best[label] for label in with_values), reverse=True
        )
        assert descending[-1] == ascending[-1]  # missing values last either way
        opened.page.locator("#runs-table thead button", has_text="label").click()
        assert opened.labels() == post_order
        assert opened.errors == [] and opened.requests == []
    finally:
        opened.close()


@pytest.mark.long
@pytest.mark.timeout(180)
def test_a_live_page_reloads_itself_until_paused_and_a_final_one_never(browser: Any, study_url: str,
                                                                       tmp_path: Path) -> None:
    from results.report.commands import open_store
    from results.report.page_html import render_page
    from results.report.page_data import read_study_data

    make_study(study_url, "live", epochs=3)
    with open_store(study_url) as store:
        data = read_study_data(store, "live")
    live, final = tmp_path / "live.html", tmp_path / "final.html"
    live.write_text(render_page(data, reload_seconds=1), encoding="utf-8")
    final.write_text(render_page(data), encoding="utf-8")
    for path, reloads in ((live, True), (final, False)):
        opened = Opened(browser, path)
        try:
            loads: list[str] = []
            opened.page.on("load", lambda: loads.append("load"))
            opened.page.wait_for_timeout(2600)
            assert (len(loads) >= 1) == reloads, (path.name, loads)
            if reloads:
                button = opened.page.locator("#pause-reload")
                button.click()
                assert button.inner_text() == "resume reloading"
                opened.page.wait_for_timeout(300)  # a reload already under way
                before = len(loads)
                opened.page.wait_for_timeout(2600)
                assert len(loads) == before  # paused, also across the reloads before
            else:
                assert opened.page.locator("#pause-reload").count() == 0
            assert opened.errors == [] and opened.requests == []
        finally:
            opened.close()
