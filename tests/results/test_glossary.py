"""One vocabulary: the definition of the columns, the tables that use it, the README's glossary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from results.report.columns import EPOCHS, RUN_COLUMNS, SUMMARY, TERMINAL_PRIORITY, column, glossary_markdown
from results.report.frames import EPOCH_COLUMNS
from results.report.tables import POST_COLUMNS
from sweeps.config import RunConfig

pytestmark = pytest.mark.timeout(60)
README = Path(__file__).resolve().parents[2] / "README.md"
NAMES = [c.name for c in (*RUN_COLUMNS, *EPOCHS)]


def _glossary() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Glossary\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_glossary_lists_exactly_the_definitions_columns():
    section = _glossary()
    assert glossary_markdown() in section  # as `python -m results.report.columns` prints it
    listed = re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(NAMES) and len(listed) == len(set(listed))


def test_every_name_is_snake_case_ascii_and_defined_once():
    assert len(NAMES) == len(set(NAMES))
    for name in NAMES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*(_<t>)?", name), name
    assert set(SUMMARY) <= set(NAMES) and set(TERMINAL_PRIORITY) == set(SUMMARY)


def test_the_tables_use_only_defined_names(post_study):
    """The raw table, the summary and the epoch table: each column is in the definition
    (a `[train]` key aside), so the glossary explains every column a user sees."""
    from results.report.frames import read_study
    from results.report.tables import raw_table, summary_table
    from results.store.result_store import ResultStore

    url, study, _ = post_study
    with ResultStore(url, create=False) as store:
        runs, epochs = read_study(store, study)
    train_keys = set(RunConfig.model_fields)
    for name in raw_table(runs, epochs).columns:
        assert name in NAMES or name in train_keys or column(name).name == "threshold_epoch_<t>", name
    assert list(summary_table(runs, epochs).columns) == list(SUMMARY)
    assert set(EPOCH_COLUMNS) - {"run_id", "label", "run_key", "trial_number"} == {c.name for c in EPOCHS}


def test_the_posts_headers_stay_in_the_posts_order():
    assert POST_COLUMNS == (
        "#", "epoch", "acc_val", "acc", "epo best", "val acc best", "final loss", "final val loss",
        "shift", "l2", "λ", "m", "α", "reduction model", "comment",
    )
