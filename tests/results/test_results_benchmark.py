"""The export benchmark runs (small), so that it does not rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "export_speed.py"


def test_the_export_benchmark_runs(capsys):
    spec = importlib.util.spec_from_file_location("export_speed", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--runs", "30", "--epochs", "12", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "pandas.read_sql of the 360 joined rows" in out and "ratio export / read_sql" in out
