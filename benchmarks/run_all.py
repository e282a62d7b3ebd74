"""`make bench`: every CPU benchmark, one after the other, then their ratios together.

Each benchmark runs the project and its baseline side by side and ends with a block of
`name: value` lines; this collects the ratio and target lines of all of them.

    python benchmarks/run_all.py [--only NAME,NAME]
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
)
SUMMARY_WORDS = ("ratio", "target", "duplicates", "lost", "twice", "complete", "growth")


def run(name: str) -> tuple[int, float, list[str]]:
    """Runs one benchmark, echoing its output; returns status, seconds, output lines."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py")],
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
    args = parser.parse_args()
    names = args.only.split(",") if args.only else BENCHMARKS
    report: list[str] = []
    failed = []
    total = time.monotonic()
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        status, seconds, lines = run(name)
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
