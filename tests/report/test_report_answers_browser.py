"""The report's answers in Chromium: the overlay, the parallel coordinates (WebGL) and the
per-value summary render; no Plotly cloud link; the filter; the folded sweep file; a
note where WebGL is missing; a live page keeps zoom, selection, filter and scroll
across its reloads. One page load serves the first tests (module-scoped)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from report_studies import Opened, make_study
from sweep_runner.cli import main

PLOTS = ("per-value", "parallel", "val-acc", "val-loss")


@pytest.fixture(scope="module")
def answers(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Opened, list[dict], Path]]:
    """The report of a 3 λ × 2 α × 2 seeds study with EMA curves, a diverged run, a
    waiting one and a threshold (0.99) no run reaches, opened once, every study plot drawn."""
    import optuna

    folder = tmp_path_factory.mktemp("answers")
    url = f"sqlite:///{folder / 'sweeps.db'}"
    runs = make_study(url, "answers", lambdas=(0.05, 0.1, 0.2), copies=2, epochs=8, waiting=1, ema=True)
    # No run reaches the study's threshold: the threshold-epoch heatmap has nothing to show.
    optuna.load_study(study_name="answers", storage=url).set_user_attr("report_threshold", 0.99)
    path = folder / "answers.html"
    assert main(["report", "answers", "--storage", url, "--output", str(path)]) == 0
    opened = Opened(browser, path)
    try:
        for key in PLOTS:
            opened.render(key)
        yield opened, runs, path
    finally:
        opened.close()


def _coloured_pixels(png: bytes, box: tuple[float, float, float, float]) -> int:
    """Pixels clearly coloured (not white, grey or black) inside a fraction box of an image."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    crop = image.crop((int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height)))
    pixels = np.asarray(crop, dtype=np.int16)
    return int((pixels.max(axis=-1) - pixels.min(axis=-1) > 60).sum())


@pytest.mark.timeout(180)
def test_overlay_parallel_coordinates_and_per_value_summary_render(answers: tuple) -> None:
    opened, runs, _ = answers
    page = opened.page
    trained = [run for run in runs if run["epochs"]]
    overlay = page.locator('[data-figure="val-acc"]')
    # A raw and an EMA line per run, every epoch, and one legend entry per run.
    assert overlay.evaluate("gd => gd.data.length") == 2 * len(trained)
    assert overlay.evaluate("gd => gd.data.every(t => t.x.length === 8)")
    assert overlay.locator(".legendtext").count() == len(trained)
    assert overlay.locator("g.trace.scatter").count() == 2 * len(trained)
    # The thresholds are labelled on the overlay and on each run's accuracy panel.
    assert overlay.locator(".shape-label-text").all_text_contents() == ["0.99", "0.92", "0.93"] * 2
    run_plot = opened.render(f"run-{trained[0]['run_id']}")
    assert run_plot.locator(".shape-label-text").all_text_contents() == ["0.99", "0.92", "0.93"]
    # Best val_acc over λ × α is drawn; the threshold epoch, which no run has, says so.
    assert opened.render("sweep-0").locator(".hm").count() == 1
    assert page.locator('[data-figure="sweep-1"]').count() == 0
    assert page.locator('[data-empty="sweep-1"]').inner_text() == (
        "no run reached val_acc ≥ 0.99: no threshold epoch to show")
    # Per value: a panel per swept quantity (λ, α, seed, epochs), a best and a mean point per value.
    summary = page.locator('[data-figure="per-value"]')
    titles = summary.locator(".xtitle, .x2title, .x3title, .x4title").all_text_contents()
    assert titles == ["λ", "α", "epochs", "seed"]
    assert summary.locator("g.trace.scatter").count() == 8
    assert summary.locator("g.trace.scatter .point").count() > 2 * 6
    # Parallel coordinates: an axis per swept quantity and best val_acc, the lines drawn
    # by WebGL (coloured pixels between the first and the last axis).
    parallel = page.locator('[data-figure="parallel"]')
    assert parallel.locator(".y-axis .axis-title").all_text_contents() == [
        "λ (log10)", "α (log10)", "epochs", "seed", "best val_acc"]
    assert parallel.locator("canvas").count() >= 1
    assert _coloured_pixels(parallel.screenshot(), (0.1, 0.3, 0.6, 0.9)) > 500
    assert opened.errors == [] and opened.dialogs == [] and opened.requests == []


@pytest.mark.timeout(180)  # as the first: the suite's ordering by timeout keeps the page's tests together
def test_no_plotly_cloud_link_or_logo_anywhere(answers: tuple) -> None:
    page = answers[0].page
    outside_scripts = """() => { const body = document.body.cloneNode(true);
        body.querySelectorAll('script').forEach(s => s.remove()); return body.innerHTML; }"""

    def buttons() -> list[str]:
        return page.evaluate("Array.from(document.querySelectorAll('.modebar-btn'))"
                             ".map(b => b.getAttribute('data-title') || b.getAttribute('href') || '')")

    # A control plot with plotly's defaults shows the upload and the logo: what this test looks for.
    page.evaluate("""() => { const div = document.createElement('div'); div.id = 'control';
        document.body.appendChild(div); return Plotly.newPlot(div, [{y: [1, 2]}]); }""")
    assert "Share chart..." in buttons() and "plotly.com" in page.evaluate(outside_scripts)
    page.evaluate("() => { Plotly.purge(document.getElementById('control')); "
                  "document.getElementById('control').remove(); }")
    shown = buttons()
    assert "Download plot as a PNG" in shown and len(shown) > 10  # the report's own modebars
    assert not any("cloud" in b.lower() or "share" in b.lower() or "chart studio" in b.lower() for b in shown)
    dom = page.evaluate(outside_scripts).lower()
    for word in ("share chart", "chart studio", "chart-studio", "plotly.com", "plot.ly", "plotly cloud"):
        assert word not in dom, word
    assert page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
                         ".filter(h => !h.startsWith('#'))") == []


@pytest.mark.timeout(180)
def test_the_filter_keeps_the_rows_with_every_word(answers: tuple) -> None:
    opened, runs, _ = answers
    page = opened.page
    box = page.locator("#runs-filter")

    def visible() -> list[str]:
        return page.locator("#runs-table tbody tr:not([hidden]) th a").all_inner_texts()

    box.fill("diverged")
    assert visible() == [runs[1]["label"]]
    assert page.locator("#runs-shown").inner_text() == f"1 of {len(runs)} runs"
    box.fill("WAITING w0")  # any case; every word
    assert visible() == ["w0"]
    box.fill("waiting complete")
    assert visible() == [] and page.locator("#runs-shown").inner_text() == f"0 of {len(runs)} runs"
    box.fill("")
    assert sorted(visible()) == sorted(run["label"] for run in runs)
    assert page.locator("#runs-shown").inner_text() == ""


@pytest.mark.timeout(180)
def test_the_sweep_file_is_folded_and_the_table_above_the_fold(answers: tuple) -> None:
    page = answers[0].page
    page.evaluate("window.scrollTo(0, 0)")
    details = page.locator("details#sweep-file")
    assert details.evaluate("d => d.open") is False
    assert not page.locator("details#sweep-file pre").is_visible()
    top = page.evaluate("document.getElementById('runs-table').getBoundingClientRect().top")
    rows = page.evaluate("Array.from(document.querySelectorAll('#runs-table tbody tr'))"
                         ".filter(r => r.getBoundingClientRect().bottom < window.innerHeight).length")
    assert top < 600 and rows >= 5, (top, rows)
    page.locator("details#sweep-file summary").click()
    assert page.locator("details#sweep-file pre").is_visible()
    assert "[space]" in page.locator("details#sweep-file pre").inner_text()


#: What a browser with WebGL turned off answers to the page's question.
NO_WEBGL = """(() => { const get = HTMLCanvasElement.prototype.getContext;
    HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
      return /webgl/i.test(kind) ? null : get.call(this, kind, ...rest); }; })();"""


def _select_larger_lambda(opened: Opened) -> list[float]:
    """Drags along the parallel coordinates' λ axis over its larger value (the band
    snaps to the values it holds); returns the band."""
    parallel = opened.render("parallel")
    axis = parallel.locator(".axis-brush .background").first.bounding_box()
    opened.page.mouse.move(axis["x"] + axis["width"] / 2, axis["y"] + 0.5 * axis["height"])
    opened.page.mouse.down()
    opened.page.mouse.move(axis["x"] + axis["width"] / 2, axis["y"] - 10, steps=5)
    opened.page.mouse.up()
    band = parallel.evaluate("gd => gd.data[0].dimensions[0].constraintrange")
    assert band[0] < math.log10(0.2) <= band[1]
    return band


@pytest.mark.timeout(180)
def test_a_live_page_keeps_zoom_filter_and_scroll_across_an_update(browser: Any, study_url: str,
                                                                   tmp_path: Path) -> None:
    """Without WebGL, which also shows the parallel coordinates' note: with it, a
    parcoords render costs seconds of SwiftShader, twice here."""
    _live_update(browser, study_url, tmp_path, webgl=False)


@pytest.mark.long
@pytest.mark.timeout(240)
def test_a_live_page_keeps_a_parallel_coordinates_selection_too(browser: Any, study_url: str,
                                                                tmp_path: Path) -> None:
    _live_update(browser, study_url, tmp_path, webgl=True)


def _live_update(browser: Any, study_url: str, tmp_path: Path, *, webgl: bool) -> None:
    """Opens a live page, zooms, filters, opens the sweep file, scrolls (and, with
    WebGL, selects on the parallel coordinates); the sweep adds epochs and the page
    reloads: the new epochs are drawn and everything the reader did is as it was."""
    from report_studies import _history, _record_epochs
    from results.report.commands import open_store
    from results.report.outputs import write_output
    from results.report.page_data import read_study_data
    from results.report.page_html import render_page
    from results.store.result_store import ResultStore

    runs = make_study(study_url, "live", epochs=4)
    path = tmp_path / "live.html"

    def write() -> None:
        with open_store(study_url) as store:
            # A live page, its timer too slow to fire here: the test reloads it as the timer
            # does (the timer itself is test_report_browser's).
            write_output(path, render_page(read_study_data(store, "live"), reload_seconds=3600))

    write()
    opened = Opened(browser, path, init_script=None if webgl else NO_WEBGL)
    page = opened.page
    try:
        page.locator("#runs-filter").fill("complete")
        page.locator("details#sweep-file summary").click()
        band = _select_larger_lambda(opened) if webgl else None
        if not webgl:
            parallel = opened.render("parallel", state="no-webgl")
            assert parallel.locator(".webgl-missing").inner_text().startswith("This plot needs WebGL")
            assert parallel.locator("canvas").count() == 0
        overlay = opened.render("val-acc")
        # Zoom into the raw panel with the mouse, as a reader does.
        area = overlay.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(area["x"] + 0.2 * area["width"], area["y"] + 0.3 * area["height"])
        page.mouse.down()
        page.mouse.move(area["x"] + 0.6 * area["width"], area["y"] + 0.7 * area["height"], steps=5)
        page.mouse.up()
        zoom = overlay.evaluate("gd => [...gd.layout.xaxis.range, ...gd.layout.yaxis.range]")
        assert zoom[1] < 4  # zoomed: the whole x axis would reach past epoch 4
        page.evaluate("window.scrollBy(0, 137)")
        scroll = page.evaluate("window.scrollY")
        # The sweep writes two more epochs per run and the page; the page reloads.
        with ResultStore(study_url) as store:
            for number, run in enumerate(runs):
                _record_epochs(store, run["run_id"], _history(number, 6)[4:])
        write()
        with page.expect_event("load", timeout=30_000):
            page.evaluate("setTimeout(() => window.location.reload(), 0)")
        assert page.evaluate("window.scrollY") == pytest.approx(scroll, abs=2)
        page.wait_for_function("document.querySelector('[data-figure=\"val-acc\"]').dataset.rendered === 'done'")
        overlay = page.locator('[data-figure="val-acc"]')
        assert overlay.evaluate("gd => Math.max(...gd.data.map(t => t.x.length))") == 6  # the update arrived
        kept = overlay.evaluate("gd => [...gd.layout.xaxis.range, ...gd.layout.yaxis.range]")
        assert kept == pytest.approx(zoom)
        assert page.locator("#runs-filter").input_value() == "complete"
        assert page.locator("#runs-table tbody tr:not([hidden])").count() == len(runs) - 1  # not the diverged
        assert page.locator("details#sweep-file").evaluate("d => d.open") is True
        if webgl:
            parallel = opened.render("parallel")
            assert parallel.evaluate("gd => gd.data[0].dimensions[0].constraintrange") == pytest.approx(band)
        assert opened.errors == [] and opened.requests == []
    finally:
        opened.close()
