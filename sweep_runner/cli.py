"""The `sweep` command line: one subcommand per verb, each a thin call into the packages.

Only the standard library is imported at the top, so that Ctrl-C in the first second of
any command ends it quietly (exit status 130, no traceback): everything else is
imported inside `main`, where the interrupt is caught.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_CTRL_C = 130

#: Examples shown under each command's help (`sweep help CMD`, `sweep CMD --help`).
EXAMPLES = {
    "check": [
        "sweep check sweeps/quickstart.toml",
        "sweep check sweeps/lambda_alpha_grid.toml --json | head -1",
    ],
    "model": ["sweep model --depth 56", "sweep model --depth 11 --input-shape 16,16,1"],
    "train": [
        "sweep train sweeps/post_table1.toml --run 1       # by label",
        "sweep train sweeps/lambda_alpha_grid.toml --run '#3'   # the third run of the file",
        "sweep train sweeps/quickstart.toml --run 5307d9  # by a run-key prefix (sweep check lists keys)",
    ],
    "run": [
        "sweep run sweeps/quickstart.toml",
        "sweep run sweeps/lambda_alpha_grid.toml --workers 2 --report lambda_alpha.html",
        "sweep run sweeps/post_table1.toml --storage postgresql+psycopg://me@db/sweeps --max-trials 0",
    ],
    "resume": ["sweep resume quickstart", "sweep resume lambda_alpha --workers 2"],
    "worker": ["sweep worker lambda_alpha --storage postgresql+psycopg://me@db/sweeps --gpus 0,1"],
    "retry": ["sweep retry quickstart --failed", "sweep retry post_table1 --runs 3A,5"],
    "export": [
        "sweep export quickstart",
        "sweep export quickstart --format csv --style raw --output quickstart.csv",
        "sweep export lambda_alpha --epochs --format json | head",
    ],
    "plot": ["sweep plot quickstart", "sweep plot post_table1 --runs 5,7 --output plots --log"],
    "report": ["sweep report quickstart --output quickstart.html"],
    "status": ["sweep status", "sweep status quickstart --storage sqlite:///sweeps.db"],
    "db": ["sweep db current", "sweep db upgrade --storage postgresql+psycopg://me@db/sweeps"],
    "help": ["sweep help run", "sweep help"],
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

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
        "--storage", default=None, metavar="URL",
        help="database URL: sqlite:///FILE.db or postgresql+psycopg://USER@HOST/DB "
        "(default: $SWEEP_STORAGE, else sqlite:///sweeps.db)",
    )


def _file(parser: argparse.ArgumentParser) -> None:
    import shtab

    parser.add_argument("file", help="the sweep file (.toml), e.g. sweeps/quickstart.toml").complete = shtab.FILE


def _study(parser: argparse.ArgumentParser, **options: object) -> None:
    parser.add_argument("study", help="the study's name (`sweep status` lists them)", **options)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    import shtab

    parser = _Parser(
        prog="sweep",
        description="Hyperparameter sweeps of Keras training (AdamW, ResNet v2) on Optuna.",
        epilog="Run `sweep help COMMAND` for a command's options and examples. "
        "Plain output: NO_COLOR=1 or a pipe.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {_version()}")
    shtab.add_argument_to(
        parser, ["--print-completion"],
        help="print a shell completion script and exit: "
        "`sweep --print-completion bash > ~/.local/share/bash-completion/completions/sweep`",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser,
        help="one of these (`sweep help COMMAND` shows its options and examples):",
    )
    commands.required = True

    check = commands.add_parser("check", help="validate a sweep file and list its trials")
    _file(check)
    check.add_argument("--json", action="store_true", help="print resolved configs as JSON lines")
    check.set_defaults(handler=_check)

    model = commands.add_parser("model", help="print the ResNet v2 layer summary")
    model.add_argument("--depth", type=int, default=56, help="9n+2: 11, 20, 56 (the post's), 110, … (default 56)")
    model.add_argument("--input-shape", default="32,32,3", help="H,W,C (default 32,32,3)")
    model.set_defaults(handler=_model)

    train = commands.add_parser("train", help="train one run of a sweep file, without Optuna")
    _file(train)
    train.add_argument(
        "--run", required=True, metavar="RUN",
        help="the run: its label (1, 3A, …), #N (1-based, as `sweep check` numbers them) or a run-key prefix",
    )
    train.add_argument("--data-dir", default=None, help="folder with local datasets (cifar-10-python.tar.gz, …)")
    train.add_argument("--checkpoints", default=None, help="checkpoint folder (default: a fresh one)")
    train.set_defaults(handler=_train)

    from sweep_runner import commands as runner_commands  # the runner's own verbs

    runner_commands.add_parsers(commands, _add_storage)
    # `sweep submit` uses the launch commands' helpers: registered here, not by them.
    from sweep_runner import submit

    submit.add_parser(commands, _add_storage)

    export = commands.add_parser("export", help="export a study's results table")
    _study(export)
    export.add_argument(
        "--format", choices=["csv", "md", "html", "latex", "json"], default=None,
        help="csv, md, html, latex or json; default: to a terminal the table fitted to its width, else md",
    )
    export.add_argument(
        "--style", choices=["summary", "post", "raw"], default="summary",
        help="summary (default): the post's columns by their names; post: the post's headers, for md, html, "
        "latex; raw: every metric and setting",
    )
    export.add_argument("--output", default=None, help="file to write (default: stdout)")
    export.add_argument("--threshold", type=float, default=None, help="val_acc threshold (default: the sweep's, else 0.92)")
    export.add_argument("--swing-start", type=int, default=None, help="start-up epochs val_loss_swing and val_acc_dip skip (default: the sweep's [report] swing_start, else 5)")
    export.add_argument("--epochs", action="store_true", help="the long per-epoch table instead")
    export.add_argument("--sort", default="file", help="order of the runs: file (default), label, or a column: val_acc_best, threshold_epoch, delta_val_loss, …")
    _add_storage(export)
    export.set_defaults(handler=_export)

    plot = commands.add_parser("plot", help="write the post's plots of a study as PNGs")
    _study(plot)
    plot.add_argument("--runs", default=None, help="comma-separated labels or run keys (default: all)")
    plot.add_argument("--output", default="plots", help="folder (default: plots)")
    plot.add_argument("--log", action="store_true", help="losses on a log scale")
    _add_storage(plot)
    plot.set_defaults(handler=_plot)

    report = commands.add_parser("report", help="write a study's report: one self-contained HTML page")
    _study(report)
    report.add_argument("--output", default=None, help="the page, an .html file (default: STUDY.html)")
    _add_storage(report)
    report.set_defaults(handler=_report)

    status = commands.add_parser("status", help="studies in the storage and their runs")
    _study(status, nargs="?")
    _add_storage(status)
    status.set_defaults(handler=_status)
    database = commands.add_parser("db", help="the results schema: show it, or migrate a database to it")
    database.add_argument(
        "action", choices=["current", "upgrade", "stamp"],
        help="current: the database's schema revision; upgrade: migrate it (back it up first); "
        "stamp: record a revision without migrating",
    )
    database.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    _add_storage(database)
    database.set_defaults(handler=_db)

    helper = commands.add_parser("help", help="show a command's help and examples")
    helper.add_argument(
        "topic", nargs="?", choices=[name for name in commands.choices if name != "help"] + ["help"],
        metavar="COMMAND", help="the command (default: the list of commands)",
    )
    helper.set_defaults(handler=lambda args: _help(parser, commands, args.topic))
    for name, command in commands.choices.items():
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.get(name, []))
    return parser


def _help(parser: argparse.ArgumentParser, commands: argparse._SubParsersAction, topic: str | None) -> int:
    """`sweep help [COMMAND]`: what `sweep [COMMAND] --help` prints."""
    (commands.choices[topic] if topic else parser).print_help()
    return 0


def _db(args: argparse.Namespace) -> int:
    from results.store import known_revisions, schema_command as schema_main
    from sweep_runner.storage import default_storage

    storage = args.storage or default_storage()
    symbolic = {"head", "heads", "base"}
    if args.action != "current" and args.revision not in symbolic | known_revisions():
        from sweeps.errors import InputError

        known = ", ".join(sorted(known_revisions()))
        raise InputError(f"sweep db {args.action} {args.revision}: unknown revision; known: head, base, {known}")
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
    from sweep_runner.storage import default_storage

    return export_command(
        args.study, storage=args.storage or default_storage(), format=args.format,
        style=args.style, output=args.output, threshold=args.threshold, epochs=args.epochs, sort=args.sort,
        swing_start=args.swing_start,
    )


def _plot(args: argparse.Namespace) -> int:
    from results.report import plot_command
    from sweep_runner.storage import default_storage

    from results.report import parse_runs

    runs = parse_runs(args.runs) if args.runs else None
    return plot_command(
        args.study, storage=args.storage or default_storage(), runs=runs,
        output=args.output, log=args.log,
    )


def _report(args: argparse.Namespace) -> int:
    from results.report import report_command
    from sweep_runner.storage import default_storage

    return report_command(args.study, storage=args.storage or default_storage(), output=args.output)


def _status(args: argparse.Namespace) -> int:
    from results.report import status_command
    from sweep_runner.storage import default_storage

    return status_command(args.study, storage=args.storage or default_storage())


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one `sweep` command; bad input and database errors as one line, exit 2.

    Args:
        argv: the arguments (default: the process's).
    """
    import logging

    from sweep_runner import logs
    from sweep_runner.errors import database_problem, path_problem
    from sweep_runner.pipes import closed_stdout_stops_printing
    from sweeps.errors import InputError

    args = build_parser().parse_args(argv)
    # The library's warnings on stderr; stdout is for tables and progress.
    logs.configure(getattr(args, "log_format", None) or "plain", level=logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    note = None
    if args.command in ("run", "resume", "worker"):
        note = "stdout closed: printing stops, the sweep goes on (`sweep status` shows it; the runs' logs keep it)"
    try:
        with closed_stdout_stops_printing(note):
            return handler(args)
    except InputError as error:
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        return 2
    except Exception as error:
        problem = path_problem(error) or database_problem(error, getattr(args, "storage", None))
        if problem is None:
            raise
        sys.stderr.write(f"{problem}\n")
        return 2


def run() -> None:
    """The `sweep` console script."""
    try:
        code = main()
    except KeyboardInterrupt:
        # Before a command installs its own handling (a run stops after its epoch),
        # Ctrl-C has nothing to save: end quietly, as shells expect.
        code = EXIT_CTRL_C
    raise SystemExit(code)
