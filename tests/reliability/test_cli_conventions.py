"""The command line's conventions: help on every argument with examples, -V, `sweep help
CMD`, shell completion, and plain output under NO_COLOR or in a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep_runner.cli import EXAMPLES, build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [name for name in EXAMPLES]
ESCAPE = "\x1b["


def _sweep(*argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "sweep_runner", *argv], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=120,
    )


def _arguments_without_help(text: str) -> list[str]:
    """The argument lines of an argparse help text that have no description: a line
    that names an argument, with nothing after it and no deeper-indented line below."""
    lines = text.splitlines()
    bare = []
    in_arguments = False
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            in_arguments = line in ("positional arguments:", "options:")
            continue
        if not in_arguments or not line.startswith("  ") or line.startswith("   "):
            continue
        described = re.search(r"\S\s{2,}\S", line.strip())
        continued = i + 1 < len(lines) and lines[i + 1].startswith(" " * 8) and lines[i + 1].strip()
        if not described and not continued:
            bare.append(line.strip())
    return bare


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_argument_has_help_and_each_command_examples(command, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert _arguments_without_help(text) == [], text
    assert "examples:\n" in text and f"  sweep {command}" in text


def test_the_help_check_sees_an_argument_without_help():
    assert _arguments_without_help("options:\n  -h, --help  show this\n  --depth DEPTH\n") == ["--depth DEPTH"]


@pytest.mark.timeout(60)
def test_version_and_help_command(sweep):
    code, out, _ = sweep("-V")
    assert code == 0 and re.fullmatch(r"sweep \S+\n", out)
    code, via_help, _ = sweep("help", "train")
    assert code == 0 and "--run RUN" in via_help
    assert sweep("train", "--help")[1] == via_help
    code, listing, _ = sweep("help")
    assert _arguments_without_help(listing) == [], listing
    assert code == 0 and all(name in listing for name in ("check", "run", "export", "db"))
    code, _, err = sweep("help", "nosuch")
    assert code == 2 and len(err.splitlines()) == 1 and "invalid choice: 'nosuch'" in err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shell, marker", [("bash", "complete -o"), ("zsh", "#compdef sweep")])
def test_shell_completion_scripts(shell, marker):
    result = _sweep("--print-completion", shell)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    for command in ("check", "run", "resume", "export", "--storage", "--log-format"):
        assert command in result.stdout


@pytest.mark.timeout(120)
def test_no_color_and_pipes_are_plain():
    """rich's own NO_COLOR keeps bold and italics; ours drops every escape code."""
    sweep_file = "sweeps/quickstart.toml"
    forced = _sweep("check", sweep_file, env={"FORCE_COLOR": "1"})
    assert forced.returncode == 0 and ESCAPE in forced.stdout  # the check can see escapes
    plain = _sweep("check", sweep_file, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0 and ESCAPE not in plain.stdout
    assert "λ=0.05 α=8.e-4" in plain.stdout
    piped = _sweep("check", sweep_file)
    assert piped.returncode == 0 and ESCAPE not in piped.stdout
