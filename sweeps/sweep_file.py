"""A sweep file: one TOML file, one study, expanded into resolved trials.

Trials come from a grid (`[space]`, the cartesian product), from explicit `[[runs]]`
(the post's tables), or, with `[search]`, from an Optuna sampler at run time.
"""

from __future__ import annotations

import itertools
import json
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sweeps.config import RunConfig, consistency_problems
from sweeps.errors import InputError
from sweeps.limits import (
    MAX_FILE_BYTES, MAX_LABEL_CHARS, MAX_NESTING, MAX_TRIALS, control_characters, grid_size, nesting, too_deep_key,
)
from sweeps.notation import SYMBOLS, format_value
from sweeps.problems import from_validation_error, join_path, unknown_key
from sweeps.sections import Report, Search, Study

# A study's name names a folder, `<checkpoints>/<study>/`, so it must stay one: `../../x`,
# `/etc` or a name with a slash would put its checkpoints and logs outside
# `--checkpoints`; a name is therefore a single, plain path component.
MAX_NAME = 100
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
ALLOWED = (
    f"1 to {MAX_NAME} letters, digits, '_', '-' or '.', beginning with a letter or digit "
    "(it names the folder <checkpoints>/<study>/)"
)


def name_problem(name: str) -> str | None:
    """What is wrong with a study name, or None when it is a valid one."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return None
    return f"must be {ALLOWED}, got {name!r}"


SECTIONS = ("name", "description", "train", "space", "runs", "search", "report", "study")
RUN_KEYS = ("label", "comment")
SETTINGS = tuple(RunConfig.model_fields)


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its resolved configuration, label and key.

    Args:
        number: 1-based position in the sweep.
        label: given (`"3A"`) or derived from the swept values (`"λ=0.10 α=8.e-4"`).
        comment: free text from the sweep file.
        config: the resolved configuration.
    """

    number: int
    label: str
    comment: str | None
    config: RunConfig

    @property
    def run_key(self) -> str:
        return self.config.run_key


@dataclass
class Sweep:
    """A validated sweep file.

    Args:
        path: the file it was read from.
        text: the file's text, kept with the study so that `sweep resume` needs no file.
        name: the study's name (default: the file's stem).
        train: the `[train]` settings, as written.
        space: the grid: a list of values per key.
        runs: the explicit runs, as written (label, comment and overrides).
        search: a sampler instead of a grid.
        report: the tables' thresholds and the swings' window.
        study: retries, objectives and pruning.
    """

    path: Path
    name: str
    description: str = ""
    text: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    space: dict[str, list[Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    search: Search | None = None
    report: Report = field(default_factory=Report)
    study: Study = field(default_factory=Study)

    def trials(self) -> list[Trial]:
        """The grid points, then the explicit runs; one trial when there is neither.

        A `[search]` sweep has no trials before its sampler is asked: see `resolve`.
        """
        if self.search is not None:
            return []
        trials = [
            Trial(0, label, None, _config(self.train, point))
            for label, point in self._grid_points()
        ]
        for run in self.runs:
            overrides = {k: v for k, v in run.items() if k not in RUN_KEYS}
            trials.append(Trial(0, str(run["label"]), run.get("comment"), _config(self.train, overrides)))
        if not self.space and not self.runs:
            trials.append(Trial(0, "1", None, _config(self.train, {})))
        return [
            Trial(i, t.label, t.comment, t.config) for i, t in enumerate(trials, start=1)
        ]

    def resolve(self, params: dict[str, Any], number: int) -> Trial:
        """The trial a sampler's `params` stand for (a `[search]` sweep)."""
        label = " ".join(_label_part(key, value) for key, value in params.items())
        return Trial(number, label or str(number), None, _config(self.train, params))

    def train_signature(self) -> dict[str, Any]:
        """The fixed settings, canonical: a study refuses a file whose `[train]` differs."""
        return json.loads(json.dumps(self.train, sort_keys=True, default=str))

    def _grid_points(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.space:
            return []
        keys = list(self.space)
        points = []
        for values in itertools.product(*(range(len(self.space[k])) for k in keys)):
            point = {k: self.space[k][i] for k, i in zip(keys, values)}
            label = " ".join(
                f"schedule={i + 1}" if k == "schedule" else _label_part(k, point[k])
                for k, i in zip(keys, values)
            )
            points.append((label, point))
        return points


def _label_part(key: str, value: Any) -> str:
    return f"{SYMBOLS.get(key, key)}={format_value(value)}"


def _config(train: dict[str, Any], overrides: dict[str, Any]) -> RunConfig:
    merged = {**train, **overrides}
    return RunConfig.model_validate_json(json.dumps(merged), strict=True)


def load_sweep(path: str | Path) -> Sweep:
    """Reads and validates a sweep file.

    Raises:
        InputError: with every problem of the file, one line each.
    """
    path = Path(path)
    try:
        mode = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {error.strerror}") from None
    if not stat.S_ISREG(mode.st_mode):
        raise InputError(f"{path}: not a plain file; give a sweep file (.toml)")
    if mode.st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: {mode.st_size:,} bytes: a sweep file is at most {MAX_FILE_BYTES:,} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read it: {error}") from None
    return parse_sweep(text, path)


def parse_sweep(text: str, path: str | Path) -> Sweep:
    """Validates a sweep file's text; `path` names it in messages and gives the default name.

    Raises:
        InputError: with every problem of the file, one line each.
    """
    path = Path(path)
    if len(text) > MAX_FILE_BYTES:
        raise InputError(f"{path}: {len(text):,} characters: a sweep file is at most {MAX_FILE_BYTES:,} bytes")
    where = too_deep_key(text) or "(top level)"
    too_deep = f"{path}: {where}: tables and arrays nested more than {MAX_NESTING} deep: a sweep file needs at most 7"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: TOML syntax error: {error}") from None
    except RecursionError:
        raise InputError(too_deep) from None
    if nesting(data) > MAX_NESTING:
        raise InputError(too_deep)
    problems: list[tuple[str, str]] = []
    sweep = _read(path, data, problems)
    sweep.text = text
    if not problems:
        _check_size(sweep, problems)
    if not problems:
        _check_trials(sweep, problems)
    if problems:
        raise InputError(*(f"{path}: {key}: {message}" for key, message in problems))
    return sweep


def _read(path: Path, data: dict[str, Any], problems: list[tuple[str, str]]) -> Sweep:
    for key in data:
        if key not in SECTIONS:
            problems.append((join_path(key), unknown_key(key, SECTIONS)))
    sweep = Sweep(path=path, name=path.stem)
    for key in ("name", "description"):
        if key in data:
            if isinstance(data[key], str) and (data[key].strip() or key == "description"):
                setattr(sweep, key, data[key])
            else:
                problems.append((key, f"must be a non-empty string, got {data[key]!r}"))
    problem = name_problem(sweep.name)
    if problem and "name" in data and isinstance(data["name"], str) and data["name"].strip():
        problems.append(("name", problem))
    elif problem and "name" not in data:
        problems.append(("name", f"the study is named after the file, {sweep.name!r}, which is not a valid "
                         f"name: write name = \"…\", {ALLOWED}"))
    sweep.train = _settings(_table(data, "train", problems), ("train",), problems)
    sweep.space = _space(_table(data, "space", problems, present=True), problems)
    sweep.runs = _runs(data.get("runs"), problems)
    for key, model in (("search", Search), ("report", Report), ("study", Study)):
        if key in data:
            setattr(sweep, key, _section(data[key], model, key, problems))
    if sweep.search is not None:
        if "space" in data or "runs" in data:
            problems.append(("search", "cannot be combined with [space] or [[runs]]: a sampler chooses the trials"))
        for key, choice in sweep.search.space.items():
            if key not in SETTINGS:
                problems.append((join_path("search", "space", key), unknown_key(key, SETTINGS)))
            elif choice.choices is not None:
                for i, value in enumerate(choice.choices):
                    _setting(key, value, ("search", "space", key, "choices", i), problems)
            else:
                for bound in ("low", "high"):
                    _setting(key, getattr(choice, bound), ("search", "space", key, bound), problems)
    return sweep


def _table(data: dict[str, Any], key: str, problems: list, present: bool = False) -> dict[str, Any] | None:
    if key not in data:
        return None
    if not isinstance(data[key], dict):
        problems.append((key, f"must be a table [{key}], got {type(data[key]).__name__}"))
        return None
    if present and not data[key]:
        problems.append((key, "empty grid: give at least one key with a list of values"))
    return data[key]


def _section(value: Any, model: type[BaseModel], key: str, problems: list) -> Any:
    if not isinstance(value, dict):
        problems.append((key, f"must be a table [{key}]"))
        return None
    try:
        return model.model_validate_json(json.dumps(value, default=str), strict=True)
    except ValidationError as error:
        problems.extend(from_validation_error(error, model, (key,), model.model_fields))
        return None


def _setting(key: str, value: Any, path: tuple, problems: list) -> bool:
    """Validates one setting on its own; records problems under `path`."""
    try:
        RunConfig.model_validate_json(json.dumps({key: value}, default=str), strict=True)
    except ValidationError as error:
        found = [
            (p, m) for p, m in from_validation_error(error, RunConfig, ())
            if p == key or p.startswith((f"{key}.", f"{key}["))
        ]
        problems.extend((join_path(*path) + p[len(key):], m) for p, m in found)
        return not found
    return True


def _settings(table: dict[str, Any] | None, path: tuple, problems: list, extra: tuple = ()) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in (table or {}).items():
        if key in extra:
            continue
        if key not in SETTINGS:
            problems.append((join_path(*path, key), unknown_key(key, SETTINGS + extra)))
        elif _setting(key, value, (*path, key), problems):
            settings[key] = value
    return settings


def _space(table: dict[str, Any] | None, problems: list) -> dict[str, list[Any]]:
    space: dict[str, list[Any]] = {}
    for key, values in (table or {}).items():
        if key not in SETTINGS:
            problems.append((join_path("space", key), unknown_key(key, SETTINGS)))
            continue
        if not isinstance(values, list):
            problems.append((join_path("space", key), f"must be a list of values, got {values!r}"))
            continue
        if not values:
            problems.append((join_path("space", key), "empty: give at least one value"))
            continue
        seen: list[Any] = []
        for i, value in enumerate(values):
            if value in seen:
                problems.append((join_path("space", key, i), f"duplicate value {value!r}"))
            seen.append(value)
            _setting(key, value, ("space", key, i), problems)
        space[key] = values
    return space


def _runs(runs: Any, problems: list) -> list[dict[str, Any]]:
    if runs is None:
        return []
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        problems.append(("runs", "must be an array of tables: [[runs]] label = \"1\" …"))
        return []
    labels: dict[str, int] = {}
    checked = []
    for i, run in enumerate(runs):
        label = run.get("label")
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(label, str) or not label.strip():
            problems.append((join_path("runs", i, "label"), "is required: a non-empty string such as \"3A\""))
        elif label in labels:
            problems.append((join_path("runs", i, "label"), f"duplicate label {label!r} (also runs[{labels[label]}])"))
        else:
            labels[label] = i
            _check_label(label, join_path("runs", i, "label"), problems)
        comment = run.get("comment")
        if comment is not None and not isinstance(comment, str):
            problems.append((join_path("runs", i, "comment"), f"must be a string, got {comment!r}"))
        elif comment is not None and (found := control_characters(comment, allowed="\t\n")):
            problems.append((
                join_path("runs", i, "comment"),
                f"control characters {', '.join(found)}: a comment is text (tabs and line breaks allowed)",
            ))
        settings = _settings(run, ("runs", i), problems, extra=RUN_KEYS)
        checked.append({"label": label, "comment": comment, **settings})
    return checked


def _check_label(label: str, path: str, problems: list) -> None:
    """A label is one line of at most `MAX_LABEL_CHARS` printable characters: it is
    stored whole, shown in tables and is part of file names."""
    found = control_characters(label)
    if found:
        problems.append((path, f"control characters {', '.join(found)}: a label is one line of printable text"))
    if len(label) > MAX_LABEL_CHARS:
        problems.append((path, f"{len(label):,} characters: a label has at most {MAX_LABEL_CHARS:,}"))


def _check_size(sweep: Sweep, problems: list) -> None:
    """At most `MAX_TRIALS` trials, counted before the grid is expanded."""
    points = grid_size([len(values) for values in sweep.space.values()])
    if points + len(sweep.runs) > MAX_TRIALS:
        sizes = " × ".join(str(len(values)) for values in sweep.space.values()) or "0"
        problems.append((
            "space" if sweep.space else "runs",
            f"{points:,} grid points ({sizes}) and {len(sweep.runs):,} runs: a study has at most "
            f"{MAX_TRIALS:,} trials",
        ))


def _check_trials(sweep: Sweep, problems: list) -> None:
    """Problems between settings (schedule vs α and epochs) and duplicate runs."""
    if sweep.search is not None:
        _check_search(sweep, problems)
        return
    seen: dict[str, str] = {}
    for label, point in sweep._grid_points():
        if len(label) > MAX_LABEL_CHARS:
            problems.append((
                "space", f"the grid's labels reach {len(label):,} characters ({label[:40]}…): a label has at "
                f"most {MAX_LABEL_CHARS:,}; sweep fewer keys, or give the runs as [[runs]] with labels",
            ))
            return
        if _consistency(sweep.train, point, "space", problems):
            _once(_config(sweep.train, point).run_key, f"space ({label})", seen, problems)
    for i, run in enumerate(sweep.runs):
        overrides = {k: v for k, v in run.items() if k not in RUN_KEYS}
        if _consistency(sweep.train, overrides, f"runs[{i}]", problems):
            _once(_config(sweep.train, overrides).run_key, f"runs[{i}]", seen, problems)
    if not sweep.space and not sweep.runs:
        _consistency(sweep.train, {}, "train", problems)


#: Choices of a `[search.space]` checked pairwise (beyond, one at a time).
PAIRED_CHOICES = 60


def _check_search(sweep: Sweep, problems: list) -> None:
    """Every choice of `[search.space]` with both ends of every range, and with each
    choice of the other keys: a sampler may draw any of them together, and a pair that
    cannot train (an absolute schedule that does not start at the searched α) would
    fail every trial it is drawn in. One problem per choice."""
    assert sweep.search is not None
    space = sweep.search.space
    choices = [(key, i, value) for key, searched in space.items() for i, value in enumerate(searched.choices or [])]
    combinations = [[item] for item in choices] or [[]]
    if len(choices) <= PAIRED_CHOICES:
        combinations += [[a, b] for n, a in enumerate(choices) for b in choices[n + 1:] if a[0] != b[0]]
    reported: set[str] = set()
    for bound in ("low", "high"):
        params = {k: getattr(r, bound) for k, r in space.items() if r.choices is None}
        _consistency(sweep.train, params, "search.space", problems)
        for combination in combinations:
            point = {**params, **{key: value for key, _, value in combination}}
            config = RunConfig.model_validate_json(
                json.dumps({**sweep.train, **point}), strict=True, context={"skip_consistency": True}
            )
            for key, message in consistency_problems(config):
                blamed = [(k, i) for k, i, _ in combination if k == key] or [(k, i) for k, i, _ in combination[:1]]
                if not blamed:
                    continue  # a problem of the ranges alone: reported above
                path = join_path("search", "space", blamed[0][0], "choices", blamed[0][1])
                others = {k: v for k, v in point.items() if k != blamed[0][0]}
                with_ = " and ".join(f"{k} = {_shown(v)}" for k, v in others.items()) or "[train]"
                if path not in reported:
                    reported.add(path)
                    problems.append((path, f"{message} (drawn with {with_})"))
    longest = sum(
        1 + max(len(_label_part(key, value)) for value in (searched.choices or [searched.low, searched.high, 1 / 3]))
        for key, searched in space.items()
    )
    if longest > MAX_LABEL_CHARS:
        problems.append((
            "search.space", f"its labels may reach {longest:,} characters: a label has at most "
            f"{MAX_LABEL_CHARS:,}; search fewer keys or shorter choices",
        ))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value)


def _consistency(train: dict, overrides: dict, where: str, problems: list) -> bool:
    """Records the problems between settings of one trial; True when there are none."""
    config = RunConfig.model_validate_json(
        json.dumps({**train, **overrides}), strict=True, context={"skip_consistency": True}
    )
    found = consistency_problems(config)
    for key, message in found:
        if key in overrides and where == "space":
            entry = (f"space.{key}", f"{message} (at {_describe_point(overrides)})")
        else:
            entry = (f"{where if key in overrides else 'train'}.{key}", message)
        if entry not in problems:
            problems.append(entry)
    return not found


def _describe_point(point: dict[str, Any]) -> str:
    return " ".join(_label_part(k, v) for k, v in point.items() if k != "schedule") or "the grid"


def _once(run_key: str, where: str, seen: dict[str, str], problems: list) -> None:
    if run_key in seen:
        problems.append((where, f"the same run as {seen[run_key]}: change a setting or remove one"))
    else:
        seen[run_key] = where
