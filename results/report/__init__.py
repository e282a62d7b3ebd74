"""The reports: a study's runs and epochs read from `results.store` and turned into the
post's metrics, tables (Markdown, CSV, HTML, LaTeX, JSON), plots, the HTML page, the
live page of `sweep run --report`, and `sweep status`; the command-line verbs `sweep
export`, `sweep plot`, `sweep report` and `sweep status`.

Its public names are below; `sweep_runner` imports only these. They load on first use:
pandas, plotly and matplotlib only with the names that need them.
"""

from __future__ import annotations

from sweeps.lazy import lazy_names

#: Each public name and the module that defines it.
_PUBLIC = {
    "export_command": "results.report.commands",
    "plot_command": "results.report.commands",
    "report_command": "results.report.commands",
    "status_command": "results.report.commands",
    "open_store": "results.report.commands",
    "require_study": "results.report.commands",
    "refuse_file": "results.report.outputs",
    "refuse_folder": "results.report.outputs",
    "storage_files": "results.report.outputs",
    "parse_runs": "results.report.labels",
    "select_runs": "results.report.labels",
    "best_epoch": "results.report.metrics",
    "run_metrics": "results.report.metrics",
    "threshold_epoch": "results.report.metrics",
    "summary_table": "results.report.tables",
    "shared_training_table": "results.report.tables",
    "print_fitted": "results.report.terminal",
    "post_table": "results.report.tables",
    "raw_table": "results.report.tables",
    "render_rich": "results.report.tables",
    "read_study": "results.report.frames",
    "build_report": "results.report.page",
    "check_report_path": "results.report.page",
    "write_report": "results.report.page",
    "LiveReport": "results.report.live_page",
    "next_step": "results.report.status",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_names(globals(), _PUBLIC)
