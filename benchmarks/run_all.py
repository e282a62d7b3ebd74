"""`make bench`: every CPU benchmark, one after the other, then their ratios together.

Each benchmark runs the project and its baseline side by side and ends with a block of
`name: value` lines; this collects the ratio and target lines of all of them.

    python benchmarks/run_all.py [--only NAME,NAME] [--quick]

`--quick` runs each in its smallest mode, a check that it still works (the tests'
smoke tests, tests/benchmarks/), not a measurement.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
# In the order of the issues: trainer, results, runner, workers, then reliability.
BENCHMARKS = (
    "trainer_throughput",
    "export_speed",
    "report_page",
    "dispatch_overhead",
    "concurrency",
    "worker_memory",
    "chaos",
    "measurement_cost",
    "connections",
    "scale",
    "m_sweep",
)
# Each benchmark's smallest mode: seconds, not minutes; its figures mean nothing.
QUICK = {
    "trainer_throughput": ["--depth", "11", "--images", "64", "--batch", "32", "--epochs", "1",
                           "--warmup", "0", "--image-size", "16"],
    "export_speed": ["--runs", "20", "--epochs", "5", "--repeat", "1"],
    "report_page": ["--runs", "3", "--epochs", "5", "--repeat", "1"],
    "dispatch_overhead": ["--trials", "2", "--epochs", "1", "--train-size", "64",
                          "--baseline-trials", "2", "--write-epochs", "3"],
    "concurrency": ["--workers", "2", "--backends", "sqlite", "--points", "2", "--epochs", "1",
                    "--train-size", "64"],
    "worker_memory": ["--trials", "2", "--epochs", "1", "--train-size", "64"],
    "measurement_cost": ["--depth", "11", "--images", "64", "--batch", "32", "--epochs", "1"],
    "m_sweep": ["--values", "2", "--epochs", "1", "--workers", "2"],
    # No full-disk round: so short a sweep ends before a disk could be filled under it.
    "connections": ["--workers", "1", "--runs", "1", "--epochs", "1", "--epoch-seconds", "0.2"],
    "scale": ["--workers", "1,2", "--runs", "1", "--epochs", "1", "--epoch-seconds", "0.2", "--processes", "1"],
    "chaos": ["--runs", "1", "--epochs", "2", "--train-size", "64", "--kills", "1",
              "--min-delay", "2", "--max-delay", "3", "--full-disk", "0"],
}
SUMMARY_WORDS = ("ratio", "target", "duplicates", "lost", "twice", "complete", "growth")


def run(name: str, quick: bool = False) -> tuple[int, float, list[str]]:
    """Runs one benchmark, echoing its output; returns status, seconds, output lines."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py"), *(QUICK[name] if quick else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line.rstrip("\n"))
    return process.wait(), time.monotonic() - started, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    parser.add_argument("--quick", action="store_true", help="each in its smallest mode: a check, not figures")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"run_all.py: --only: unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    report: list[str] = []
    failed = []
    total = time.monotonic()
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        status, seconds, lines = run(name, args.quick)
        report.append(f"{name} ({seconds:.0f} s{', FAILED' if status else ''}):")
        report += [f"  {line.strip()}" for line in lines if any(w in line.lower() for w in SUMMARY_WORDS)]
        if status:
            failed.append(name)
    print(f"\n=== summary ({time.monotonic() - total:.0f} s) ===")
    print("\n".join(report))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
