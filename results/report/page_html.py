"""The report as one HTML page: the study's facts, its table, its plots, a section
per run, with plotly.js and the plot data inside, so that it opens offline from disk
or as an e-mail attachment and asks the network for nothing.

All user text (the study's name, labels, comments, the description, the sweep file,
failure reasons) is HTML-escaped; the plot data is JSON in a `<script
type="application/json">` element (`results.report.page_json`). Plots render as they
scroll into view, so a study of hundreds of runs opens at once.

The study's plots answer "which value was best?": per swept value the best and mean
best val_acc (`value_summary`), the λ × α heatmaps, parallel coordinates
(`parallel`, WebGL: a note where the browser has none) and every run's val_acc and
val_loss overlaid, a style per run (`overlays`, `run_styles`). A plot with nothing to
show is a sentence saying why. Plotly's modebar offers no upload to its cloud. The
reader's zoom, parcoords selections, table filter, open sections and scroll are kept
in `sessionStorage` for the tab, so that the live page's reloads (a page on file://
cannot fetch its new version) leave them as they were.
"""

from __future__ import annotations

import functools
import html
import json
import math
from typing import Any

import pandas as pd

from results.report.frames import config_of
from results.report.figures import Figure, drawn, importance_figure, run_figure, swept_keys, sweep_figures
from results.report.overlays import overlay_figure
from results.report.parallel import parallel_figure
from results.report.run_styles import post_order, run_styles
from results.report.value_summary import value_summary_figure
from results.report.page_json import script_code, script_json
from results.report.page_data import StudyData
from results.report.page_table import run_anchor, table_html

_STYLE = """
:root { color-scheme: light; --line: #d0d4da; --muted: #5b6470; --mark: #e3f4e1; --never: #fbf3e4; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 0 1.2rem 4rem; color: #1d2329; }
h1 { margin: 1.2rem 0 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid var(--line); }
h3 { margin: 1.6rem 0 0.3rem; }
.description { font-size: 1.05rem; color: var(--muted); margin: 0 0 0.8rem; }
.live { background: #fff7d6; border: 1px solid #e8d27c; padding: 0.4rem 0.7rem; border-radius: 4px; }
.live button { margin-left: 0.6rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0.6rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
pre { background: #f5f6f8; border: 1px solid var(--line); padding: 0.6rem; overflow: auto; max-height: 28rem;
      font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
table.sortable { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13.5px; }
table.sortable th, table.sortable td { border-bottom: 1px solid var(--line); padding: 0.2rem 0.5rem;
      text-align: right; white-space: nowrap; }
table.sortable thead th { position: sticky; top: 0; background: #fff; border-bottom: 2px solid #8a939e; }
table.sortable thead button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer;
      padding: 0; }
table.sortable th[aria-sort=ascending] button::after { content: " ▲"; }
table.sortable th[aria-sort=descending] button::after { content: " ▼"; }
table.sortable tbody th { text-align: left; font-weight: 600; }
table.sortable td:nth-child(2), table.sortable td:nth-last-child(-n+2) { text-align: left; }
table.sortable td:last-child { white-space: normal; min-width: 12rem; }
td.reached { background: var(--mark); font-weight: 600; }
tr.never td, tr.never th { background: var(--never); } td.unreached { color: #8a5a00; }
.legend { color: var(--muted); font-size: 13px; }
.legend .reached-cell { background: var(--mark); font-weight: 600; padding: 0 0.3rem; }
.plot { width: 100%; }
section.run { border-top: 1px solid var(--line); }
.run .meta { color: var(--muted); margin: 0.2rem 0; }
.run .failure { color: #a11; }
.note { color: var(--muted); font-style: italic; }
.caption { color: var(--muted); font-size: 13px; margin: 0.2rem 0; }
.filter input { font: inherit; width: min(28rem, 70%); padding: 0.15rem 0.4rem; }
#runs-shown { color: var(--muted); font-size: 13px; margin-left: 0.5rem; }
a.up { font-size: 13px; color: var(--muted); }
@media print { .live, a.up { display: none; } pre { max-height: none; } }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("report-figures").textContent);
  // Offline: no logo link, no "Share chart" upload to Plotly's cloud.
  var options = {displaylogo: false, showSendToCloud: false, showEditInChartStudio: false, responsive: true};
  var plots = Array.prototype.slice.call(document.querySelectorAll("[data-figure]"));

  // What the reader did to the page (zoom, selections, scroll, open sections, the
  // filter), kept for this tab across reloads: the live page reloads every few seconds
  // and a page on file:// cannot fetch its new version instead.
  var viewKey = "sweep-report-view:" + location.pathname;
  var view = {};
  try { view = JSON.parse(sessionStorage.getItem(viewKey) || "{}") || {}; } catch (e) { view = {}; }
  view.plots = view.plots || {};
  function saveView() {
    try { sessionStorage.setItem(viewKey, JSON.stringify(view)); } catch (e) { /* no storage: nothing kept */ }
  }

  // Sets `path` (`xaxis.range[0]`, `dimensions[2].constraintrange`) inside `target`.
  function setPath(target, path, value) {
    var parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    var last = parts.pop();
    parts.forEach(function (part, i) {
      var next = i + 1 < parts.length ? parts[i + 1] : last;
      if (target[part] === undefined || target[part] === null) target[part] = /^\d+$/.test(next) ? [] : {};
      target = target[part];
    });
    target[last] = value;
  }
  var ZOOM = /^([xy]axis\d*)\.(range(\[[01]\])?|autorange)$/;
  var BRUSH = /^dimensions\[\d+\]\.constraintrange$/;
  function remember(key, update, pattern) {
    var saved = view.plots[key] = view.plots[key] || {};
    var names = Object.keys(update || {}).filter(function (name) { return pattern.test(name); });
    names.forEach(function (name) {
      var prefix = name.match(pattern)[1] || name;
      Object.keys(saved).forEach(function (old) {
        if ((old.match(pattern) || [])[1] === prefix || old === name) delete saved[old];
      });
    });
    names.forEach(function (name) {
      var value = Array.isArray(update[name]) && pattern === BRUSH ? update[name][0] : update[name];
      if (!/autorange$/.test(name) && value !== null && value !== undefined) saved[name] = value;
    });
    saveView();
  }

  var webgl = null;
  function hasWebgl() {
    if (webgl === null) {
      try {
        var canvas = document.createElement("canvas");
        webgl = !!(window.WebGLRenderingContext &&
                   (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
      } catch (e) { webgl = false; }
    }
    return webgl;
  }

  function render(element) {
    if (element.dataset.rendered) return;
    var key = element.dataset.figure;
    var figure = figures[key];
    var needsWebgl = figure.data.some(function (trace) { return trace.type === "parcoords"; });
    if (needsWebgl && !hasWebgl()) {
      element.dataset.rendered = "no-webgl";
      element.style.height = "auto";
      element.innerHTML = '<p class="note webgl-missing">This plot needs WebGL, which this browser does not ' +
        "offer (turned off, or no graphics driver for it). The table and the per-value plot show the same " +
        "numbers.</p>";
      return;
    }
    element.dataset.rendered = "pending";
    var saved = view.plots[key] || {};
    Object.keys(saved).forEach(function (name) {
      if (ZOOM.test(name)) setPath(figure.layout, name, saved[name]);
      else if (BRUSH.test(name)) setPath(figure.data[0], name, saved[name]);
    });
    Plotly.newPlot(element, figure.data, figure.layout, options).then(function () {
      element.on("plotly_relayout", function (update) { remember(key, update, ZOOM); });
      element.on("plotly_restyle", function (update) { remember(key, update && update[0], BRUSH); });
      element.dataset.rendered = "done";
    });
  }
  function renderAll() { plots.forEach(render); }
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { observer.unobserve(entry.target); render(entry.target); }
      });
    }, {rootMargin: "600px 0px"});
    plots.forEach(function (element) { observer.observe(element); });
  } else {
    renderAll();
  }
  window.addEventListener("beforeprint", renderAll);

  // Sorting: numbers by their data-v value, text alphabetically; missing values last.
  var table = document.getElementById("runs-table");
  if (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, index) {
      header.querySelector("button").addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var numeric = header.dataset.type === "number";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[index].dataset.v, y = b.cells[index].dataset.v;
          if (x === "" || y === "") return x === y ? 0 : (x === "" ? 1 : -1);
          var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
          if (d !== d) d = 0;  // Infinity - Infinity
          return ascending ? d : -d;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  // The filter: a row stays when it contains every word typed (any case).
  var filter = document.getElementById("runs-filter");
  var shown = document.getElementById("runs-shown");
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var rows = table.tBodies[0].rows, count = 0;
    Array.prototype.forEach.call(rows, function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !keep;
      if (keep) count += 1;
    });
    shown.textContent = words.length ? count + " of " + rows.length + " runs" : "";
  }
  if (table && filter) {
    filter.value = view.filter || "";
    filter.addEventListener("input", function () { view.filter = filter.value; saveView(); applyFilter(); });
    applyFilter();
  }

  // Open sections (the sweep file, a run's configuration) and the scroll, as they were.
  var details = Array.prototype.slice.call(document.querySelectorAll("details"));
  if (view.open) details.forEach(function (d, i) { d.open = view.open.indexOf(i) !== -1; });
  details.forEach(function (d) {
    d.addEventListener("toggle", function () {
      view.open = details.map(function (x, i) { return x.open ? i : -1; }).filter(function (i) { return i >= 0; });
      saveView();
    });
  });
  if (typeof view.scroll === "number") {
    if ("scrollRestoration" in history) history.scrollRestoration = "manual";
    window.scrollTo(view.scrollX || 0, view.scroll);
  }
  window.addEventListener("pagehide", function () {
    view.scroll = window.scrollY;
    view.scrollX = window.scrollX;
    saveView();
  });

  // While the study runs, `sweep run --report` rewrites the file: reload it.
  var seconds = parseInt(document.body.dataset.reload || "0", 10);
  var button = document.getElementById("pause-reload");
  if (seconds > 0 && button) {
    var key = "sweep-report-paused";
    var paused = function () { try { return sessionStorage.getItem(key) === "1"; } catch (e) { return false; } };
    var show = function () { button.textContent = paused() ? "resume reloading" : "pause reloading"; };
    button.addEventListener("click", function () {
      try { sessionStorage.setItem(key, paused() ? "0" : "1"); } catch (e) { /* no storage: keep reloading */ }
      show();
    });
    show();
    window.setInterval(function () { if (!paused()) window.location.reload(); }, seconds * 1000);
  }
})();
"""


_FILTER = (
    '<p class="filter"><label for="runs-filter">filter the runs</label> '
    '<input type="search" id="runs-filter" autocomplete="off" spellcheck="false" '
    'placeholder="words a row must contain: 3A, complete, 0.05 …"> '
    '<span id="runs-shown" aria-live="polite"></span></p>'
)


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


@functools.cache
def plotly_js() -> str:
    """plotly.js as shipped in the plotly package (no CDN), safe inside `<script>`."""
    from plotly.offline import get_plotlyjs

    return script_code(get_plotlyjs())


def _when(value: Any) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


def _facts(data: StudyData) -> str:
    runs = data.runs
    started = runs["started"].min() if "started" in runs.columns and len(runs) else None
    finished = runs["finished"].max() if "finished" in runs.columns and len(runs) else None
    ran = " → ".join(t for t in (_when(started), "" if data.running else _when(finished)) if t)
    unfinished = " (not finished)" if data.running and ran else ""
    states = " · ".join(f"{state} {count}" for state, count in data.states().items())
    rows = [
        ("runs", f"{len(runs)}" + (f" ({states})" if states else "")),
        ("ran", ran + unfinished or "not started"),
        ("hosts", ", ".join(data.distinct("host"))),
        ("devices", ", ".join(data.distinct("device"))),
        ("versions", "; ".join(data.versions())),
        ("storage", data.storage),
        ("sweep file", data.sweep_path),
        ("threshold", f"val_acc ≥ {data.threshold:g}"),
        ("written", _when(data.written)),
    ]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows if value)
    return f'<dl class="facts">{items}</dl>'


def _header(data: StudyData, reload_seconds: int | None) -> str:
    parts = [f"<h1>{_e(data.study)}</h1>"]
    if data.description:
        parts.append(f'<p class="description">{_e(data.description)}</p>')
    if reload_seconds:
        parts.append(
            f'<p class="live">The study is running: this page reloads every {reload_seconds} s '
            f'while <code>sweep run --report</code> rewrites it, keeping your zoom, selections, filter '
            'and scroll.<button type="button" id="pause-reload">'
            "pause reloading</button></p>"
        )
    parts.append(_facts(data))
    if data.sweep_text:
        parts.append(
            '<details id="sweep-file"><summary>the sweep file, as written '
            f"({_e(data.sweep_path or 'kept with the study')})"
            f"</summary><pre>{_e(data.sweep_text)}</pre></details>"
        )
    return "<header>" + "".join(parts) + "</header>"


def _plot(key: str, figure: Figure, figures: dict[str, Figure]) -> str:
    # The same uirevision on every rewrite: plotly keeps a zoom across Plotly.react.
    figure["layout"]["uirevision"] = key
    figures[key] = figure
    height = int(figure["layout"].get("height", 400))
    return f'<div class="plot" data-figure="{_e(key)}" style="height:{height}px"></div>'


def _note(text: str, kind: str) -> str:
    return f'<p class="note" data-empty="{_e(kind)}">{_e(text)}</p>'


def _study_plots(data: StudyData, figures: dict[str, Figure]) -> str:
    keys = post_order(swept_keys(data.runs))
    parts = ['<section id="study-plots"><h2>All runs</h2>']
    parts.append("<h3>Each swept value: best and mean of the runs' best val_acc</h3>")
    summary = value_summary_figure(data.runs, keys) if "val_acc_best" in data.runs.columns else None
    parts.append(_plot("per-value", summary, figures) if summary else _note(
        "no quantity varies between the runs" if not keys else "no run has a val_acc yet", "per-value"))
    summaries, over = sweep_figures(data.runs, data.threshold)
    if summaries:
        parts.append(f"<h3>Best val_acc and threshold epoch, {_e(over)}</h3>")
        empty = ("no run has a val_acc yet",
                 f"no run reached val_acc ≥ {data.threshold:g}: no threshold epoch to show")
        parts += [_plot(f"sweep-{i}", figure, figures) if drawn(figure) else _note(empty[i], f"sweep-{i}")
                  for i, figure in enumerate(summaries)]
    else:
        parts.append(f'<h3>Best val_acc and threshold epoch</h3><p class="note">{_e(over)}</p>')
    parts.append("<h3>Parallel coordinates</h3>")
    parallel = parallel_figure(data.runs, keys) if "val_acc_best" in data.runs.columns else None
    if parallel is None or parallel.figure is None:
        parts.append(_note(parallel.note if parallel else "no runs yet", "parallel"))
    else:
        parts.append(_plot("parallel", parallel.figure, figures))
        if parallel.left_out:
            parts.append(f'<p class="note">{parallel.left_out} run(s) without a best val_acc are not drawn.</p>')
    styling = run_styles(data.runs, keys)
    for key, columns, title, thresholds in (
        ("val-acc", ("val_acc", "val_acc_ema"), "val_acc of every run", data.thresholds),
        ("val-loss", ("val_loss",), "val_loss of every run", ()),
    ):
        parts.append(f"<h3>{_e(title)}</h3>")
        figure = overlay_figure(data.runs, data.epochs, styling, columns, title=title, thresholds=thresholds) \
            if len(data.epochs) else None
        if figure is None:
            parts.append(_note(f"no run has a finite {columns[0]} yet", key))
        else:
            parts.append(f'<p class="caption">{_e(styling.caption())}</p>' + _plot(key, figure, figures))
    if data.importances is not None:
        parts.append("<h3>Importance of each searched quantity</h3>")
        if data.importances.values:
            parts.append(_plot("importance", importance_figure(data.importances.values, data.importances.target),
                               figures))
        else:
            parts.append(f'<p class="note">{_e(data.importances.note)}</p>')
    return "".join(parts) + "</section>"


def _number(value: Any, fmt: str) -> str:
    if value is None or pd.isna(value):
        return ""
    number = float(value)
    return format(number, fmt) if math.isfinite(number) else str(number)


def _run_meta(
    row: dict[str, Any], config: dict[str, Any] | None, threshold: float, history: pd.DataFrame | None = None,
) -> str:
    epochs = (config or {}).get("epochs", "?")
    facts = [f"state {row['state']}", f"attempts {row['attempts']}", f"{row.get('epochs_done', 0)}/{epochs} epochs"]
    if not pd.isna(row.get("val_acc_best")):
        facts.append(f"best val_acc {_number(row['val_acc_best'], '.5f')} at epoch {row['epoch_best']}")
    if row.get("threshold_reached"):
        facts.append(f"val_acc ≥ {threshold:g} at epoch {row['threshold_epoch']}")
    elif row.get("epochs_done"):
        facts.append(f"never reached val_acc {threshold:g}")
    if row.get("device"):
        facts.append(f"on {row['device']}" + (f" ({row['host']})" if row.get("host") else ""))
    meta = '<p class="meta">' + _e(" · ".join(facts)) + "</p>"
    measured = _measured_facts(row, history)
    return meta + ('<p class="meta">' + _e(" · ".join(measured)) + "</p>" if measured else "")


#: A run's measurements beyond the post's, as the run's section states them (issue 19).
_MEASURED_FACTS = (
    ("val_acc_bn_best", "BatchNorm-true best val_acc {}", ".5f"),
    ("val_acc_ema_bn_best", "with the EMA weights {}", ".5f"),
    ("test_acc_at_best", "test_acc {} at the best val_acc's epoch", ".5f"),
    ("val_loss_swing", "val_loss swings {} about its trend", ".4g"),
    ("val_acc_dip", "val_acc dips {} below its trend", ".4g"),
    ("epoch_equilibrium", "scale-invariant norm within 10 % of its equilibrium from epoch {}", ".0f"),
)


def _measured_facts(row: dict[str, Any], history: pd.DataFrame | None) -> list[str]:
    """The run's swing, dip, BatchNorm-true and equilibrium figures, and its EMA horizon
    (empty where not measured: NaN, or a column the study lacks)."""
    facts = []
    for column, text, fmt in _MEASURED_FACTS:
        value = row.get(column)
        if value is not None and not pd.isna(value):
            facts.append(text.format(_number(value, fmt)))
    if history is not None and "ema_horizon_epochs" in history.columns:
        horizon = history["ema_horizon_epochs"].dropna()
        if len(horizon):
            facts.append(f"EMA horizon {_number(horizon.iloc[-1], '.3g')} epochs")
    return facts


def _config_text(config: dict[str, Any] | None) -> str:
    if not config:
        return "(not known yet: a search trial gets its configuration when it starts)"
    return "\n".join(f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in config.items())


def _run_sections(data: StudyData, figures: dict[str, Figure]) -> str:
    by_run = dict(tuple(data.epochs.groupby("run_id", sort=False))) if len(data.epochs) else {}
    parts = ['<section id="runs"><h2>Each run</h2>']
    for row in data.runs.to_dict("records"):
        config = config_of(row)
        anchor = run_anchor(row["run_id"])
        parts.append(f'<section class="run" id="{anchor}"><h3>run {_e(row["label"])}</h3>')
        epochs = by_run.get(row["run_id"])
        parts.append(_run_meta(row, config, data.threshold, epochs))
        if row.get("comment"):
            parts.append(f'<p class="comment">{_e(row["comment"])}</p>')
        if row.get("failure_reason"):
            parts.append(f'<p class="failure">{_e(row["failure_reason"])}</p>')
        parts.append(f"<details><summary>configuration</summary><pre>{_e(_config_text(config))}</pre></details>")
        if epochs is not None and len(epochs):
            parts.append(_plot(anchor, run_figure(epochs, config, data.thresholds), figures))
        else:
            parts.append('<p class="note">No epochs stored yet.</p>')
        parts.append('<a class="up" href="#runs-table">↑ the table</a></section>')
    return "".join(parts) + "</section>"


def render_page(data: StudyData, *, reload_seconds: int | None = None) -> str:
    """The whole page.

    Args:
        data: the study (`results.report.page_data.read_study_data`).
        reload_seconds: reload the page this often (a running study's live report);
            None for a page that stays as it is.
    """
    figures: dict[str, Figure] = {}
    study_plots = _study_plots(data, figures)
    run_sections = _run_sections(data, figures)
    legend = (
        '<p class="legend"><span class="reached-cell">highlighted</span>: the first epoch with val_acc ≥ '
        f"{_e(format(data.threshold, 'g'))} and its accuracies; "
        "a shaded row: a run that never reached it (its <code>threshold_epoch</code> empty). "
        "Click a column's name to sort.</p>"
    )
    body = "".join([
        _header(data, reload_seconds),
        '<section id="table"><h2>Runs</h2>', _FILTER,
        '<div class="table-wrap">', table_html(data.table, data.runs, data.threshold), "</div>", legend, "</section>",
        study_plots,
        run_sections,
    ])
    reload_attribute = f' data-reload="{int(reload_seconds)}"' if reload_seconds else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="keras-sweep: sweep report">'
        f"<title>{_e(data.study)} · sweep report</title><style>{_STYLE}</style></head>"
        f"<body{reload_attribute}>{body}"
        f'<script type="application/json" id="report-figures">{script_json(figures)}</script>'
        f"<script>{plotly_js()}</script><script>{script_code(_SCRIPT)}</script>"
        "</body></html>\n"
    )
