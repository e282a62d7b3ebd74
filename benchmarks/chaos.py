"""Chaos: a sweep killed with SIGKILL at 10 seeded random moments, its latest checkpoint
truncated, its disk full for a while; resumed each time.

The issue's target: a sweep of 6 short runs, its worker killed with SIGKILL at 10
random moments and resumed each time, ends with 6 runs complete, 0 duplicates, 0 epochs
lost, and at most one epoch trained twice per kill.

Each round starts `sweep run FILE` in a session of its own, sleeps a seeded random
delay (printed), then kills the whole process group with SIGKILL: the command, its
worker and the worker's child die together, as on a power loss. Once the killed
processes are reaped, the next round runs the same command again: the resume takes a
dead local worker's run over at once (it checks the worker's pid), without waiting for
the heartbeat's grace period. After the kills, a last uninterrupted run finishes the
sweep; should it hang (every unfinished run stranded, or no progress at all for
`--stall-seconds`), it is reported as hung and killed. A kill may land before a run is
claimed, while a child starts, mid-run, or between runs: all fair, and each line says
where it landed. The moments are uniform between 6 and 26 s after each start: on this
2-core CPU a start takes 10 to 15 s to its first epoch (the command and the worker
start, the child imports TensorFlow, builds the model and traces the first epoch), so
the window covers start-ups and the epochs after them.

The sweep file keeps the project's default `[study] max_retries` unless
`--max-retries` is given: a kill of the whole sweep is an interruption, not a failure
of the run, so however many kills land on one run, the next start continues it.

Then, from the results store and Optuna:

- runs complete;
- duplicates: runs with more than one COMPLETE Optuna trial (trained to completion twice);
- epochs lost: epochs missing from 1..E of a complete run, or gaps below the last
  recorded epoch of one that is not;
- epochs trained twice: Σ (trainings − 1) over every epoch, against the kills.

Two more faults follow the kills (issue "trust"):

- `--truncations N` rounds: the sweep is killed once a running run has a checkpoint of
  its second epoch or later, and that run's latest `checkpoint.npz` is cut to half its
  size (a write cut short by a kill or a full disk on a file system that does not
  order data before the rename). The next start must fall back to the epoch before,
  name the bad file in the run's `train.log`, and lose no epoch.
- `--full-disk N` rounds: the checkpoints live on a small tmpfs (mounted by the
  benchmark; it needs root, and says so when it cannot mount). Once a run has trained
  an epoch, the tmpfs is filled to the last byte; the sweep must stop by itself and
  name the full disk. The filler stays `--full-seconds`, then is deleted, and the
  sweep continues. The database stays on the ordinary disk.

The target for epochs trained twice is one per kill, two per truncation (the epoch
whose checkpoint was cut and the one in flight) and one per full-disk round and worker
(the epoch whose checkpoint the full disk refused).

Baseline (computed from the same kills, not run): a plain `study.optimize` loop without
checkpoints restarts a killed trial from epoch 1, so each kill loses every epoch its
trial had finished; the benchmark sums those.

    python benchmarks/chaos.py [--runs 6] [--epochs 5] [--kills 10] [--seed 0]
                               [--min-delay 6] [--max-delay 26] [--max-retries N]
                               [--truncations 2] [--full-disk 1] [--full-seconds 5]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import errno
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from common import audit, print_block, sqlite_url, sweep_command, sweep_env, write_sweep

STUDY = "chaos"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="runs in the sweep (default 6)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--train-size", type=int, default=512, help="digits training images: about 1 s an epoch (default 512)")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--min-delay", type=float, default=6.0, help="earliest kill, s after the start (default 6)")
    parser.add_argument("--max-delay", type=float, default=26.0, help="latest kill, s after the start (default 26)")
    parser.add_argument("--workers", type=int, default=1, help="workers per start (default 1)")
    parser.add_argument("--max-retries", type=int, default=None,
                        help="[study] max_retries of the sweep file (default: the project's default, not written)")
    parser.add_argument("--stall-seconds", type=float, default=45.0,
                        help="the final run counts as hung after this long without progress (default 45)")
    parser.add_argument("--truncations", type=int, default=2, help="rounds that truncate the latest checkpoint (default 2)")
    parser.add_argument("--full-disk", type=int, default=1, help="rounds with the checkpoints' disk full (default 1)")
    parser.add_argument("--full-seconds", type=float, default=5.0, help="how long the disk stays full (default 5)")
    parser.add_argument("--tmpfs-mib", type=int, default=64, help="size of the checkpoints' tmpfs (default 64)")
    return parser


# Every start of the sweep uses these checkpoints (a tmpfs for the full-disk rounds).
CHECKPOINTS: list[Path] = []


def start_sweep(file: Path, url: str, *, workers: int, cwd: Path, log: Path) -> subprocess.Popen:
    """`sweep run FILE` in a session of its own (killable as a group), output to `log`."""
    extra = ["--checkpoints", str(CHECKPOINTS[0])] if CHECKPOINTS else []
    with open(log, "ab") as stream:
        return subprocess.Popen(
            sweep_command(file, url, workers, *extra), cwd=cwd, env=sweep_env(),
            stdout=stream, stderr=subprocess.STDOUT, start_new_session=True,
        )


@dataclass
class Kill:
    """One round: when the kill came, and what it interrupted."""

    number: int
    delay: float
    killed: bool  # false when the sweep ended before the moment came
    phase: str
    landed: str
    epochs_at_risk: int  # epochs the interrupted run had finished (lost without checkpoints)


def snapshot(url: str) -> dict[str, dict[str, Any]]:
    """Each run's state, label, attempts and epochs recorded, by run key."""
    from results.store.result_store import ResultStore

    try:
        with ResultStore(url, create=False) as store:
            return {
                r["run_key"]: {"state": r["state"], "label": r["label"], "attempts": r["attempts"],
                               "worker": r["worker"], "epochs": len(epochs := store.epochs(r["id"])),
                               # an epoch trained again changes no count but is progress
                               "trainings": sum(e["trainings"] for e in epochs)}
                for r in store.runs(STUDY)
            }
    except Exception:  # noqa: BLE001 - no database yet: killed before it was made
        return {}


def where(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], epochs: int) -> tuple[str, str, int]:
    """Where a kill landed, judged from the store before and after the round: a phase
    (`start-up`, `child start`, `mid-run`, `between runs`), a description, and the
    epochs the interrupted run had finished."""
    if not after:
        return "start-up", "before the study existed", 0
    done = sum(r["state"] == "complete" for r in after.values())
    claimed = [
        (key, run) for key, run in after.items()
        if run["state"] == "running" and run["attempts"] > before.get(key, {}).get("attempts", 0)
    ]
    if not claimed:
        finished_now = done > sum(r["state"] == "complete" for r in before.values())
        if finished_now:
            return "between runs", f"between runs ({done} complete)", 0
        return "start-up", f"before the worker claimed a run ({done} complete)", 0
    key, run = claimed[0]
    new = run["epochs"] - before.get(key, {}).get("epochs", 0)
    phase = "child start" if new == 0 else "mid-run"
    detail = "child starting, no epoch yet" if new == 0 else f"+{new} epoch(s) this round"
    return phase, f"run {run['label']} attempt {run['attempts']} after epoch {run['epochs']}/{epochs} ({detail})", run["epochs"]


def group_members(group: int) -> list[int]:
    """The pids of a process group, zombies included."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == group:
                members.append(pid)
        except OSError:  # gone meanwhile
            continue
    return members


def kill_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGKILL to the sweep's whole session, then wait until every member is reaped.

    The worker and its child are orphans once the command dies, and PID 1 reaps them
    when it gets to it (about 1.5 s on this machine). Until then a zombie worker still
    answers `kill(pid, 0)`, so a restart would take it for alive and wait out the
    heartbeat's grace period: wait, as a restart after a real crash comes after the
    reaping.
    """
    members = group_members(process.pid)
    os.killpg(process.pid, signal.SIGKILL)  # its own session: the command, its worker, the child
    process.wait()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) for pid in members):
        time.sleep(0.05)


def kill_round(number: int, delay: float, file: Path, url: str, folder: Path, args: argparse.Namespace) -> Kill:
    """Starts the sweep, waits `delay`, kills its process group."""
    before = snapshot(url)
    process = start_sweep(file, url, workers=args.workers, cwd=folder, log=folder / f"round-{number}.log")
    try:
        process.wait(timeout=delay)
        return Kill(number, delay, False, "none", f"sweep ended first (exit {process.returncode})", 0)
    except subprocess.TimeoutExpired:
        pass
    kill_group(process)
    phase, landed, at_risk = where(before, snapshot(url), args.epochs)
    return Kill(number, delay, True, phase, landed, at_risk)


def _running_checkpoints(url: str, checkpoints: Path, min_epochs: int, since: float) -> list[Path]:
    """The latest checkpoints, written after `since` (this round), of running runs that
    have trained `min_epochs` or more: so that the one before is there to fall back to."""
    found = []
    for key, run in snapshot(url).items():
        path = checkpoints / STUDY / key / "checkpoint.npz"
        if (run["state"] == "running" and run["epochs"] >= min_epochs and path.is_file()
                and path.stat().st_mtime > since):
            found.append(path)
    return found


def truncate_round(number: int, file: Path, url: str, folder: Path, checkpoints: Path,
                   args: argparse.Namespace) -> str:
    """Starts the sweep, kills it once a run has checkpointed its 2nd epoch, and cuts that
    checkpoint to half its size. Returns what it did."""
    since = time.time()
    process = start_sweep(file, url, workers=args.workers, cwd=folder, log=folder / f"truncate-{number}.log")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = _running_checkpoints(url, checkpoints, 2, since)
        if found:
            kill_group(process)
            # Its run may have ended between the look and the kill: a finished run's
            # checkpoint is gone (a 2-epoch run's second checkpoint is its last).
            found = [path for path in found if path.is_file()]
            if not found:
                return "no running checkpoint to cut (its run finished before the kill)"
            size = found[0].stat().st_size
            with open(found[0], "r+b") as stream:
                stream.truncate(size // 2)
            return f"cut {found[0].relative_to(checkpoints)} from {size} to {size // 2} bytes"
        time.sleep(0.2)
    if process.poll() is None:
        kill_group(process)
    return "no running checkpoint to cut (the sweep ended first)"


def mount_tmpfs(path: Path, mib: int) -> str | None:
    """Mounts a tmpfs of `mib` MiB at `path`; None, or why it could not."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def fill(folder: Path) -> Path:
    """Writes a file into `folder` until its disk is full, to the last byte."""
    filler = folder / "filler"
    block = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as stream:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    stream.write(block[:size])
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return filler


def full_disk_round(number: int, file: Path, url: str, folder: Path, checkpoints: Path,
                    args: argparse.Namespace) -> tuple[str, bool]:
    """Starts the sweep, fills the checkpoints' disk after an epoch, waits for the sweep
    to stop by itself, frees the disk after `--full-seconds`. Returns what happened and
    whether the sweep's output named the full disk."""
    log = folder / f"full-disk-{number}.log"
    before = sum(r["epochs"] for r in snapshot(url).values())
    process = start_sweep(file, url, workers=args.workers, cwd=folder, log=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if sum(r["epochs"] for r in snapshot(url).values()) > before:
            break
        time.sleep(0.2)
    if process.poll() is not None:
        return f"the sweep ended before the disk was filled (exit {process.returncode})", False
    filler = fill(checkpoints)
    filled = time.monotonic()
    try:
        code = process.wait(timeout=180)
    except subprocess.TimeoutExpired:
        kill_group(process)
        code = None
    stopped_after = time.monotonic() - filled
    time.sleep(max(0.0, args.full_seconds - stopped_after))
    filler.unlink()
    text = log.read_text(errors="replace")
    named = "disk full" in text
    said = next((line for line in text.splitlines() if "disk full" in line and not line.startswith("{")), "")
    return (f"disk full; the sweep stopped by itself after {stopped_after:.1f} s (exit {code}), "
            f"saying: {said.strip()[:160]!r}; freed after {max(stopped_after, args.full_seconds):.1f} s"), named


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stranded(runs: dict[str, dict[str, Any]], max_attempts: int) -> list[str]:
    """The labels of runs left `running` under a dead local worker with no attempt
    left, when every unfinished run is such: no worker can claim any of them, so the
    sweep cannot end (its workers wait for "others running" for ever)."""
    unfinished = [r for r in runs.values() if r["state"] not in ("complete", "diverged", "pruned")]
    stuck = [
        r for r in unfinished
        if r["state"] == "running" and r["attempts"] >= max_attempts
        and not pid_alive(int((r["worker"] or "/0/").split("/")[1] or 0))
    ]
    return [r["label"] for r in stuck] if unfinished and len(stuck) == len(unfinished) else []


def final_run(file: Path, url: str, folder: Path, args: argparse.Namespace) -> tuple[str, int | None, float]:
    """The last, uninterrupted run: how it ended, its exit status (None if it hung) and
    its wall time.

    It hangs when every unfinished run is stranded (see `stranded`), or, whatever the
    cause, when the store has not changed (states, attempts, epochs) for
    `--stall-seconds`: a child's start and first epoch take about 10 to 13 s here, and a
    take-over waits for the run's claim to go stale (the 20 s grace period) and, in a
    worker that has just started, for a grace period of its own with the database
    reachable (issue 18): up to about 40 s without a change.
    """
    from sweeps.sweep_file import load_sweep

    max_attempts = load_sweep(file).study.max_retries + 1
    started = time.perf_counter()
    process = start_sweep(file, url, workers=args.workers, cwd=folder, log=folder / "final.log")
    last, changed, stuck_since = snapshot(url), time.monotonic(), None
    while process.poll() is None:
        time.sleep(1.0)
        now = snapshot(url)
        if now != last:
            last, changed = now, time.monotonic()
        labels = stranded(now, max_attempts)
        stuck_since = (stuck_since or time.monotonic()) if labels else None
        if labels and time.monotonic() - stuck_since >= 3.0:
            kill_group(process)
            why = (f"HUNG: runs {', '.join(labels)} stay 'running' under dead workers with no attempt "
                   f"left (max_retries {max_attempts - 1}), and the worker waits for them for ever; killed")
            return why, None, time.perf_counter() - started
        if time.monotonic() - changed > args.stall_seconds:
            kill_group(process)
            return f"HUNG (no progress for {args.stall_seconds:g} s), killed", None, time.perf_counter() - started
    return f"exit {process.returncode}", process.returncode, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    rng = random.Random(args.seed)
    delays = [rng.uniform(args.min_delay, args.max_delay) for _ in range(args.kills)]
    print(f"seed {args.seed}: kill moments (s after each start) " + ", ".join(f"{d:.2f}" for d in delays), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        folder = Path(tmp)
        file = write_sweep(folder, STUDY, points=args.runs, epochs=args.epochs, train_size=args.train_size, validation_size=128)
        if args.max_retries is not None:
            with open(file, "a", encoding="utf-8") as stream:
                stream.write(f"\n[study]\nmax_retries = {args.max_retries}\n")
        url = sqlite_url(folder)
        checkpoints = folder / "checkpoints"
        mount_error = mount_tmpfs(checkpoints, args.tmpfs_mib) if args.full_disk else "not asked"
        if args.full_disk and mount_error:
            print(f"full disk: skipped, cannot mount a tmpfs ({mount_error})", flush=True)
        CHECKPOINTS[:] = [checkpoints]
        try:
            return _faults(args, delays, file, url, folder, checkpoints, mount_error is None, began)
        finally:
            if mount_error is None:
                subprocess.run(["umount", "-l", str(checkpoints)], check=False)


def _faults(args: argparse.Namespace, delays: list[float], file: Path, url: str, folder: Path,
            checkpoints: Path, mounted: bool, began: float) -> int:
    kills = []
    for number, delay in enumerate(delays, start=1):
        kill = kill_round(number, delay, file, url, folder, args)
        kills.append(kill)
        print(f"kill {number:>2} at {delay:5.2f} s: {kill.landed}", flush=True)
    cuts = []
    for number in range(1, args.truncations + 1):
        cuts.append(truncate_round(number, file, url, folder, checkpoints, args))
        print(f"truncation {number}: {cuts[-1]}", flush=True)
    full_rounds, named = 0, 0
    for number in range(1, (args.full_disk if mounted else 0) + 1):
        what, said = full_disk_round(number, file, url, folder, checkpoints, args)
        full_rounds, named = full_rounds + 1, named + said
        print(f"full disk {number}: {what}", flush=True)
    status, code, final_seconds = final_run(file, url, folder, args)
    print(f"final run: {status} after {final_seconds:.1f} s", flush=True)
    found = audit(url, STUDY, args.epochs)
    left = {key: run for key, run in snapshot(url).items() if run["state"] != "complete"}
    for run in left.values():
        print(f"  not complete: run {run['label']}: {run['state']}, attempts {run['attempts']}, "
              f"{run['epochs']}/{args.epochs} epochs recorded", flush=True)
    bad_files = sorted(str(p.relative_to(checkpoints)) for p in checkpoints.rglob("*.npz.bad*"))
    named_bad = sum(p.read_text(errors="replace").count("is damaged") for p in checkpoints.rglob("train.log"))
    for path in bad_files:
        print(f"  damaged checkpoint kept aside: {path}", flush=True)
    landed = sum(k.killed for k in kills)
    at_risk = sum(k.epochs_at_risk for k in kills)
    figures = {
        "seed": args.seed,
        "kill_moments_s": " ".join(f"{d:.2f}" for d in delays),
        "kills": landed,
        **{f"kills_{p.replace(' ', '_').replace('-', '_')}": sum(k.phase == p for k in kills)
           for p in ("start-up", "child start", "mid-run", "between runs")},
        "runs_complete": f"{found.complete}/{args.runs}",
        "duplicates": found.optuna_complete_duplicates,
        "epochs_lost": found.epochs_lost,
        "epochs_trained_twice": found.epochs_trained_twice,
        "epochs_trained_twice_per_kill": found.epochs_trained_twice / landed if landed else 0.0,
        "runs_resumed": found.multi_attempt_runs,
        "truncations": sum(c.startswith("cut") for c in cuts),
        "fallbacks_to_previous_epoch": len(bad_files),
        "train_logs_naming_the_bad_file": named_bad,
        "full_disk_rounds": full_rounds,
        "full_disk_named": f"{named}/{full_rounds}",
        "optuna_trials": found.optuna_trials,
        "baseline_epochs_lost_without_checkpoints": at_risk,
        "baseline_epochs_lost_per_kill": at_risk / landed if landed else 0.0,
        "final_run": status,
        "final_run_s": final_seconds,
        "benchmark_wall_s": time.perf_counter() - began,
    }
    print_block("chaos", figures)
    cut = sum(c.startswith("cut") for c in cuts)
    ok = (
        code == 0 and found.complete == args.runs and found.optuna_complete_duplicates == 0
        and found.epochs_lost == 0
        and found.epochs_trained_twice <= landed + 2 * cut + full_rounds * args.workers
        and len(bad_files) == cut and named == full_rounds
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
