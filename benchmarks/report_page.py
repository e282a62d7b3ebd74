"""The report page of a 30-run, 60-epoch study: its size and time, against the outputs a
user would otherwise have.

Builds the study in a temporary folder (`export_speed.build`: bulk inserts through the
results models), then, in one run:

- `sweep report`: one self-contained HTML page (plotly.js embedded once);
- `sweep plot`: the post's PNGs of the same study (matplotlib), the output so far;
- plotly's own `write_html` of each run's figure, plotly.js in each file, as a user
  would save interactive plots by hand;

and prints each one's bytes and seconds and the ratios. Target: the page under 10 MB.

    python benchmarks/report_page.py [--runs 30] [--epochs 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

# The project, even without an editable install (the script's own folder, benchmarks/,
# is already on the path: export_speed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export_speed import build  # noqa: E402

TARGET_BYTES = 10 * 2**20


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            action()
        times.append(time.perf_counter() - started)
    return min(times)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from results.report.commands import open_store, plot_command, report_command
    from results.report.figures import run_figure
    from results.report.page_data import read_study_data

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'sweeps.db'}"
        build(url, "bench", args.runs, args.epochs)
        page = folder / "bench.html"
        pngs, pages = folder / "png", folder / "plotly"
        pages.mkdir()

        report_s = best_of(args.repeat, lambda: report_command("bench", storage=url, output=str(page)))
        plot_s = best_of(args.repeat, lambda: plot_command("bench", storage=url, output=str(pngs)))

        def plotly_pages() -> None:
            import plotly.graph_objects as go

            from results.report.frames import config_of

            with open_store(url) as store:
                data = read_study_data(store, "bench", importances=False)
            by_run = dict(tuple(data.epochs.groupby("run_id", sort=False)))
            for row in data.runs.to_dict("records"):
                spec = run_figure(by_run[row["run_id"]], config_of(row), data.thresholds)
                go.Figure(spec).write_html(pages / f"run-{row['run_id']}.html", include_plotlyjs=True)

        pages_s = best_of(args.repeat, plotly_pages)
        page_bytes, png_bytes, pages_bytes = page.stat().st_size, folder_bytes(pngs), folder_bytes(pages)

    mb = 2**20
    print(f"study: {args.runs} runs x {args.epochs} epochs, SQLite; best of {args.repeat}")
    print(f"  sweep report (one page)           {page_bytes / mb:7.2f} MiB  {report_s:6.2f} s")
    print(f"  sweep plot (PNGs, {args.runs + 2} files)        {png_bytes / mb:7.2f} MiB  {plot_s:6.2f} s")
    print(f"  plotly write_html per run ({args.runs} files) {pages_bytes / mb:7.2f} MiB  {pages_s:6.2f} s")
    print(f"  ratio page / PNGs: size {page_bytes / png_bytes:.2f}, time {report_s / plot_s:.2f}")
    print(f"  ratio page / plotly pages: size {page_bytes / pages_bytes:.3f}, time {report_s / pages_s:.2f}")
    met = page_bytes < TARGET_BYTES
    print(f"target: page under {TARGET_BYTES / mb:.0f} MiB: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
