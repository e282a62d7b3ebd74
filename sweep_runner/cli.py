"""The `sweep` command line: one subcommand per verb, each a thin call into the packages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from sweep_runner import logs
from sweep_runner.storage import default_storage
from sweeps.errors import InputError


def _version() -> str:
    try:
        return version("keras-sweep")
    except PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse with bad flags reported as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", default=None,
        help="database URL (default: $SWEEP_STORAGE, else sqlite:///sweeps.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sweep",
        description="Hyperparameter sweeps of Keras training (AdamW, ResNet v2) on Optuna.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    check = commands.add_parser("check", help="validate a sweep file and list its trials")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="print resolved configs as JSON lines")
    check.set_defaults(handler=_check)

    model = commands.add_parser("model", help="print the ResNet v2 layer summary")
    model.add_argument("--depth", type=int, default=56)
    model.add_argument("--input-shape", default="32,32,3", help="H,W,C (default 32,32,3)")
    model.set_defaults(handler=_model)

    train = commands.add_parser("train", help="train one run of a sweep file, without Optuna")
    train.add_argument("file")
    train.add_argument("--run", required=True, help="the run's label, #N (1-based) or run key")
    train.add_argument("--data-dir", default=None)
    train.add_argument("--checkpoints", default=None, help="checkpoint folder (default: a fresh one)")
    train.set_defaults(handler=_train)

    from sweep_runner import commands as runner_commands  # the runner's own verbs

    runner_commands.add_parsers(commands, _add_storage)
    # `sweep submit` uses the launch commands' helpers: registered here, not by them.
    from sweep_runner import submit

    submit.add_parser(commands, _add_storage)

    export = commands.add_parser("export", help="export a study's results table")
    export.add_argument("study")
    export.add_argument(
        "--format", choices=["csv", "md", "html", "latex", "json"], default=None,
        help="default: to a terminal the table fitted to its width, else md",
    )
    export.add_argument(
        "--style", choices=["summary", "post", "raw"], default="summary",
        help="summary (default): the post's columns by their names; post: the post's headers, for md, html, "
        "latex; raw: every metric and setting",
    )
    export.add_argument("--output", default=None, help="file to write (default: stdout)")
    export.add_argument("--threshold", type=float, default=None, help="val_acc threshold (default: the sweep's, else 0.92)")
    export.add_argument("--epochs", action="store_true", help="the long per-epoch table instead")
    export.add_argument("--sort", default="file", help="order of the runs: file (default), label, or a column: val_acc_best, threshold_epoch, delta_val_loss, …")
    _add_storage(export)
    export.set_defaults(handler=_export)

    plot = commands.add_parser("plot", help="write the post's plots of a study as PNGs")
    plot.add_argument("study")
    plot.add_argument("--runs", default=None, help="comma-separated labels or run keys (default: all)")
    plot.add_argument("--output", default="plots", help="folder (default: plots)")
    plot.add_argument("--log", action="store_true", help="losses on a log scale")
    _add_storage(plot)
    plot.set_defaults(handler=_plot)

    report = commands.add_parser("report", help="write a study's report: one self-contained HTML page")
    report.add_argument("study")
    report.add_argument("--output", default=None, help="the page, an .html file (default: STUDY.html)")
    _add_storage(report)
    report.set_defaults(handler=_report)

    status = commands.add_parser("status", help="studies in the storage and their runs")
    status.add_argument("study", nargs="?")
    _add_storage(status)
    status.set_defaults(handler=_status)
    database = commands.add_parser("db", help="the results schema: show it, or migrate a database to it")
    database.add_argument("action", choices=["current", "upgrade", "stamp"])
    database.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    _add_storage(database)
    database.set_defaults(handler=_db)
    return parser


def _db(args: argparse.Namespace) -> int:
    from results.store import schema_command as schema_main

    storage = args.storage or default_storage()
    return schema_main([args.action, args.revision, "--storage", storage])


def _check(args: argparse.Namespace) -> int:
    from sweeps.check import check_command

    return check_command(args.file, as_json=args.json)


def _model(args: argparse.Namespace) -> int:
    from trainer import model_command

    return model_command(args.depth, args.input_shape)


def _train(args: argparse.Namespace) -> int:
    from trainer import train_command

    return train_command(args.file, args.run, data_dir=args.data_dir, checkpoints=args.checkpoints)


def _export(args: argparse.Namespace) -> int:
    from results.report import export_command

    return export_command(
        args.study, storage=args.storage or default_storage(), format=args.format,
        style=args.style, output=args.output, threshold=args.threshold, epochs=args.epochs, sort=args.sort,
    )


def _plot(args: argparse.Namespace) -> int:
    from results.report import plot_command

    from results.report import parse_runs

    runs = parse_runs(args.runs) if args.runs else None
    return plot_command(
        args.study, storage=args.storage or default_storage(), runs=runs,
        output=args.output, log=args.log,
    )


def _report(args: argparse.Namespace) -> int:
    from results.report import report_command

    return report_command(args.study, storage=args.storage or default_storage(), output=args.output)


def _status(args: argparse.Namespace) -> int:
    from results.report import status_command

    return status_command(args.study, storage=args.storage or default_storage())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The library's warnings on stderr; stdout is for tables and progress.
    logs.configure(getattr(args, "log_format", None) or "plain", level=logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as error:
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        return 2


def run() -> None:
    raise SystemExit(main())
