"""The coordination layer at cluster scale, simulated: up to 200 workers, no training.

What is real: every simulated worker is a real `sweep_runner.worker.Worker` (its claim
loop over the study's runs, the claim with its token, its heartbeat thread for the run
and for Optuna's trial, its Optuna trial opened and told, its outcome fenced), with its
own results store and Optuna storage loaded by `load_study` as `sweep worker` does; each
attempt's "child" runs the real `sweep_runner.child.train_attempt` (its own store and
Optuna storage per attempt, the fenced epoch rows, Optuna's `report` and pruner, the
fenced checkpoint and outcome, the outcome file) against a real PostgreSQL.

What is simulated: the trainer (`trainer.train`) only sleeps `--epoch-seconds` per epoch;
a worker is a thread, not a process, and its child a thread, not a process (a
few processes, `--processes`, share the workers among them, so that 200 fit a 2-core
machine): each still opens its own engines and connections, as a real one would, and
none is held at rest. Killing a child (a lost claim) stops its thread at the next epoch.

Per worker count (`--workers 25,50,100,200`), on a fresh database and study of
`workers × --runs` runs, all workers starting together: duplicates (runs trained to
their end by two attempts, epoch rows stored by an attempt after another had claimed
the run, Optuna trials completed twice; expected 0), takeovers and attempts overlapping
in time, the peak of server connections (pg_stat_activity, sampled every 0.1 s), claims
per second in the start-up burst and the races a claim lost, p50/p99 latency of a claim
(the worker's whole `_claim_next`: reading the candidates and racing the other workers
for them), of an epoch's write (the fenced row and Optuna's report) and of a heartbeat.
The baseline is the smallest worker count: each p99 is printed as a ratio to it, and
the first count whose claim or epoch-write p99 is 3× the baseline's, or that has a
takeover or a run left, is where the design degrades on this server.

Then the largest cluster the design serves: the connections per epoch, per heartbeat and
per run measured here (and per second of an idle worker's polling) give what one GPU at
60 s epochs (runs of 60 epochs, a heartbeat every 5 s) costs the server. The server's
CPU per connection (its postmaster and backends, read through psutil when it runs on
this machine) gives the GPUs one server core serves at half load; PostgreSQL's default
`max_connections = 100` over the peak connections per worker is the other bound; the
rate this machine sustained, server and simulators together, halved, is printed too.
A full run is minutes, not seconds: the claims grow as N² (see benchmarks/RESULTS.md).

    python benchmarks/scale.py [--workers 25,50,100,200] [--runs 1] [--epochs 2]
                               [--epoch-seconds 3] [--processes 4]

A server: $SWEEP_TEST_POSTGRES_URL, else a private cluster (Debian's postgresql).
Exits 1 when a run was trained to its end twice, an epoch row stored by an attempt
that no longer held its run, or an Optuna trial completed twice for one run; runs left
incomplete by an overloaded server are reported as where it degrades.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

from common import SWEEP, audit, postgres_base, print_block, ratio, write_sweep  # noqa: E402 - puts the project on the path
from connections import _sample  # noqa: E402 - the same pg_stat_activity sampler
from sweep_runner.worker import POLL_SECONDS  # noqa: E402

#: What one GPU of a real cluster is taken to do, for the projection.
REAL_EPOCH_SECONDS = 60.0
REAL_EPOCHS_PER_RUN = 60
#: The share of the measured server throughput a cluster may use.
HEADROOM = 0.5
#: PostgreSQL's default.
MAX_CONNECTIONS = 100
#: A claim or epoch-write p99 this many times the baseline's: the design degrades there.
DEGRADED = 3.0

# -- the simulator: one process, many workers (threads) ---------------------------------


class Probe:
    """What one simulator process measures: latencies, connections opened per activity
    (claim, epoch, heartbeat, the rest of a run), who trained what when."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {"claim": [], "epoch": [], "heartbeat": [], "idle": []}
        self.polls = 0
        self.claimed_at: list[float] = []  # monotonic end of each successful claim
        self.claims: list[tuple[int, int, float]] = []  # run, attempt, end of its claim
        self.claim_races = Counter()  # claim_run and claim_first calls: won, lost
        self.connects: Counter = Counter()
        self.trained: list[tuple[int, int, str, float, float, int]] = []  # run, attempt, worker, start, end, status
        self.writes: list[tuple[int, int, int, float]] = []  # run, attempt, epoch, start of the stored write
        self.warnings: Counter = Counter()
        self.codes: list[int] = []
        self.errors: list[str] = []

    @property
    def activity(self) -> str:
        return getattr(self.local, "activity", "run")

    def timed(self, kind: str, function: Any) -> Any:
        """`function` wrapped: its latency under `kind`, its connections counted as `kind`."""
        probe = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before = probe.activity
            probe.local.activity = kind
            started = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                probe.latency[kind].append(time.monotonic() - started)
                probe.local.activity = before

        return wrapper

    def dump(self, go: float) -> dict[str, Any]:
        return {
            "latency": self.latency, "claimed_at": [t - go for t in self.claimed_at],
            "claim_races": dict(self.claim_races), "connects": dict(self.connects),
            "claims": [(r, a, t - go) for r, a, t in self.claims],
            "trained": [(r, a, w, s - go, e - go, c) for r, a, w, s, e, c in self.trained],
            "writes": [(r, a, e, t - go) for r, a, e, t in self.writes],
            "warnings": dict(self.warnings), "codes": self.codes, "errors": self.errors[:5], "polls": self.polls,
        }


class _Killed(BaseException):
    """A simulated child killed (SIGKILL) by its worker: nothing in it may catch this."""


class _ChildProcess:
    """What the worker sees of its child (`Popen`'s poll, kill, send_signal), a thread."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.killed = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.killed.set()

    def send_signal(self, _signum: int) -> None:
        self.killed.set()  # Ctrl-C: never sent in this benchmark


class _ChildThread:
    """`sweep_runner.children.Child` as a thread that runs the real `train_attempt`."""

    def __init__(self, probe: Probe, worker: str) -> None:
        self.probe, self.worker = probe, worker
        self.process = _ChildProcess()
        self._thread: threading.Thread | None = None

    def wait_imported(self, timeout: float) -> bool:
        return True  # nothing to import: the worker then looks whether to start one ahead

    def hand(self, spec: Any) -> None:
        from sweep_runner.phases import STARTING, write_phase

        write_phase(spec.checkpoint_dir, STARTING)
        self._thread = threading.Thread(target=self._run, args=(spec,), daemon=True)
        self._thread.start()

    def _run(self, spec: Any) -> None:
        from sweep_runner.child import train_attempt
        from trainer import Interrupts

        probe = self.probe
        probe.local.child = self
        probe.local.spec = spec
        started = time.monotonic()
        try:
            self.process.returncode = train_attempt(spec, Interrupts())
        except _Killed:
            self.process.returncode = -9
        except Exception as error:  # a real child would die with a traceback: status 1
            logging.getLogger("scale.child").exception("run %d: child failed", spec.run_id)
            probe.errors.append(f"child of run {spec.run_id}: {type(error).__name__}: {error}")
            self.process.returncode = 1
        with probe.lock:
            probe.trained.append((spec.run_id, spec.attempt, self.worker, started, time.monotonic(),
                                  self.process.returncode))

    def wait(self, _log_file: Any) -> int:
        assert self._thread is not None
        self._thread.join()
        assert self.process.returncode is not None
        return self.process.returncode

    def stop(self) -> None:
        self.process.kill()


class _ThreadChildren:
    """`sweep_runner.children.Children` for threads: one started ahead holds no
    connection (a real one only imports), so `prepare` has nothing to do."""

    def __init__(self, probe: Probe, worker: str) -> None:
        self.probe, self.worker = probe, worker
        self.ahead = True

    def take(self) -> _ChildThread:
        return _ChildThread(self.probe, self.worker)

    def prepare(self) -> None:
        pass

    def signal_spare(self) -> None:
        pass

    def close(self) -> None:
        pass


def _sleeping_train(probe: Probe, epoch_seconds: float):  # noqa: ANN202
    """`trainer.train` that sleeps each epoch and makes every write a training makes:
    the epoch's record, the checkpoint made current (fenced), the outcome (fenced)."""
    from trainer.records import EpochRecord, TrainResult

    def train(config: Any, on_epoch: Any, checkpoint_dir: Any, *, fence: Any = None, **_: Any) -> TrainResult:
        child = probe.local.child
        for epoch in range(1, config.epochs + 1):
            if child.process.killed.wait(epoch_seconds):
                raise _Killed
            on_epoch(EpochRecord(epoch=epoch, loss=1.0, acc=0.5, val_loss=1.0, val_acc=0.5 + epoch / 1000,
                                 lr=config.learning_rate, seconds=epoch_seconds, images_per_second=1000.0))
            probe.local.activity = "epoch"  # the checkpoint's fence is part of the epoch's writes
            try:
                with fence(False):
                    pass
            finally:
                probe.local.activity = "run"
        with fence(True):
            pass
        return TrainResult(status="completed", epochs_completed=config.epochs, best_val_acc=0.5,
                           best_epoch=config.epochs, versions={})

    return train


def _install(probe: Probe, epoch_seconds: float) -> None:
    """The probes on the real classes, and the sleeping trainer."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    import trainer
    from results.store import OptunaStudy, ResultStore
    from sweep_runner import child, worker

    trainer.train = _sleeping_train(probe, epoch_seconds)

    def connect(*_args: Any) -> None:
        if probe.activity == "claim":  # a claim or, when none is left, an idle worker's poll
            probe.local.opened += 1
        else:
            probe.connects[probe.activity] += 1

    event.listen(Pool, "connect", connect)
    claim_next, others_running = worker.Worker._claim_next, worker.Worker._others_running

    def timed_claim(self: Any) -> Any:
        probe.local.activity, probe.local.opened = "claim", 0
        started = time.monotonic()
        try:
            claimed = claim_next(self)
        finally:
            probe.local.activity = "run"
        ended = time.monotonic()
        if claimed is None:  # nothing to claim: it polls every POLL_SECONDS while others train
            probe.connects["idle"] += probe.local.opened
            probe.polls += 1
        else:
            probe.connects["claim"] += probe.local.opened
            probe.latency["claim"].append(ended - started)
            probe.claimed_at.append(ended)
            probe.claims.append((claimed[0]["id"], claimed[1], ended))
        return claimed

    worker.Worker._claim_next = timed_claim
    worker.Worker._others_running = probe.timed("idle", others_running)
    claim_run = ResultStore.claim_run

    def counted_claim_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        attempt = claim_run(self, *args, **kwargs)
        probe.claim_races["won" if attempt is not None else "lost"] += 1
        return attempt

    ResultStore.claim_run = counted_claim_run
    claim_first = ResultStore.claim_first

    def counted_claim_first(self: Any, run_ids: list[int], **kwargs: Any) -> Any:
        claimed = claim_first(self, run_ids, **kwargs)
        if run_ids:  # a None with candidates: each was taken, or being taken, by another
            probe.claim_races["won" if claimed is not None else "lost"] += 1
        return claimed

    ResultStore.claim_first = counted_claim_first
    on_epoch = probe.timed("epoch", child._FencedWriter.on_epoch)

    def recorded_on_epoch(self: Any, record: Any) -> None:
        started = time.monotonic()
        on_epoch(self, record)
        if not self.pending:  # stored (not waiting out an outage)
            with probe.lock:
                probe.writes.append((self.spec.run_id, self.spec.attempt, record.epoch, started))

    child._FencedWriter.on_epoch = recorded_on_epoch
    store_beat, optuna_beat = ResultStore.heartbeat, OptunaStudy.heartbeat

    def beat(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        probe.local.activity = "heartbeat"  # the heartbeat's thread does nothing else
        try:
            return store_beat(self, *args, **kwargs)
        finally:
            probe.local.beat_started = started

    def beat_optuna(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return optuna_beat(self, *args, **kwargs)
        finally:  # the store's beat and Optuna's: one heartbeat
            probe.latency["heartbeat"].append(time.monotonic() - probe.local.beat_started)

    ResultStore.heartbeat, OptunaStudy.heartbeat = beat, beat_optuna


class _CountWarnings(logging.Handler):
    def __init__(self, probe: Probe) -> None:
        super().__init__(logging.WARNING)
        self.probe = probe

    def emit(self, record: logging.LogRecord) -> None:
        self.probe.warnings[record.getMessage().split(":")[0][:60]] += 1


def simulate(args: argparse.Namespace) -> int:
    """A simulator process: `--threads` workers of one study, started on "go" (stdin)."""
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import load_study
    from sweep_runner.worker import Worker, WorkerOptions

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    quiet_optuna()
    probe = Probe()
    logging.getLogger().addHandler(_CountWarnings(probe))
    _install(probe, args.epoch_seconds)
    go = threading.Event()
    workers: list[Worker] = []
    for _ in range(args.threads):  # each loads the study as `sweep worker` does
        opened = load_study(args.study, args.storage)
        worker = Worker(opened, WorkerOptions(checkpoints=Path(args.checkpoints)))
        worker.interrupts.install = lambda: None  # signals go to the main thread only
        worker.children = _ThreadChildren(probe, worker.id)  # type: ignore[assignment]
        workers.append(worker)

    def run(worker: Worker) -> None:
        go.wait()
        try:
            code = worker.run()
        except Exception as error:
            logging.getLogger("scale.worker").exception("worker %s failed", worker.id)
            probe.errors.append(f"worker {worker.id}: {type(error).__name__}: {error}")
            code = 1
        with probe.lock:
            probe.codes.append(code)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    probe.connects.clear()  # from "go" on: the studies are loaded
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.monotonic(), _cpu_seconds()
    go.set()
    for thread in threads:
        thread.join()
    Path(args.out).write_text(json.dumps({**probe.dump(started), "cpu": _cpu_seconds() - cpu}))
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the benchmark ------------------------------------------------------------------------


def server_cpu(url: str) -> Callable[[], float] | None:
    """A reader of the CPU seconds the PostgreSQL server has spent so far (its postmaster,
    its live processes and every backend that has ended), when it runs on this machine;
    None when it does not. A connection with no pool is a backend process of its own."""
    import psutil
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            backend = psutil.Process(connection.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one())
            postmaster = backend.parent()
            if backend.name() != "postgres" or postmaster is None or postmaster.name() != "postgres":
                return None
    except psutil.Error:
        return None  # another machine's server (or another user's, unreadable)
    finally:
        engine.dispose()

    def spent() -> float:
        times = postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for process in postmaster.children():
            try:
                own = process.cpu_times()
                total += own.user + own.system
            except psutil.NoSuchProcess:
                pass  # ended just now: in children_* from the next reading on
        return total

    return spent


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _completed_twice(trained: list[list[Any]]) -> int:
    """Runs that two attempts trained to their end (each child exited 0)."""
    done = Counter(run for run, _attempt, _who, _start, _end, status in trained if status == 0)
    return sum(n > 1 for n in done.values())


def _overlaps(trained: list[list[Any]]) -> int:
    """Runs whose attempts overlapped in time: a child whose run was taken over trains on
    until its worker's next heartbeat, or its next fenced write, finds the claim lost."""
    by_run: dict[int, list[tuple[float, float]]] = {}
    for run, _attempt, _who, start, end, _status in trained:
        by_run.setdefault(run, []).append((start, end))
    twice = 0
    for spans in by_run.values():
        spans.sort()
        twice += any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    return twice


def _non_holder_writes(claims: list[list[Any]], writes: list[list[Any]]) -> int:
    """Epoch rows stored by a write that began after a later attempt of its run had been
    claimed (committed): the fence must have refused them."""
    later: dict[int, list[tuple[int, float]]] = {}
    for run, attempt, claimed in claims:
        later.setdefault(run, []).append((attempt, claimed))
    return sum(
        any(other > attempt and claimed < began for other, claimed in later.get(run, []))
        for run, attempt, _epoch, began in writes
    )


def _create_study(base_url: str, name: str, points: int, epochs: int, work: Path) -> str:
    from testkit.postgres import create_database

    url = create_database(base_url, f"bench_{name}_{os.getpid()}")
    sweep = write_sweep(work, name, points=points, epochs=epochs)
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    created = subprocess.run([*SWEEP, "run", str(sweep), "--storage", url, "--max-trials", "0",
                              "--checkpoints", str(work / "checkpoints")],
                             cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if created.returncode != 0:
        raise SystemExit(f"scale.py: could not create the study: {created.stderr[-2000:]}")
    return url


def measure(base_url: str, workers: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One study of `workers × runs` runs, trained by `workers` simulated workers at once."""
    name = f"scale{workers}"
    work = folder / name
    work.mkdir()
    url = _create_study(base_url, name, workers * args.runs, args.epochs, work)
    processes = min(args.processes, workers)
    shares = [workers // processes + (i < workers % processes) for i in range(processes)]
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    simulators = [
        subprocess.Popen(
            [sys.executable, str(HERE), "--as-simulator", "--study", name, "--storage", url,
             "--checkpoints", str(work / "checkpoints"), "--threads", str(share),
             "--epoch-seconds", str(args.epoch_seconds), "--out", str(work / f"sim-{i}.json")],
            cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            stderr=open(work / f"sim-{i}.log", "wb"),
        )
        for i, share in enumerate(shares)
    ]
    for simulator in simulators:  # every worker has loaded its study
        assert simulator.stdout is not None
        if simulator.stdout.readline().strip() != "ready":
            raise SystemExit(f"scale.py: a simulator did not start: {_tail(work)}")
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_sample, args=(url, stop, peak), daemon=True)
    sampler.start()
    spent = server_cpu(url)
    server_before = spent() if spent else float("nan")
    started = time.monotonic()
    for simulator in simulators:
        assert simulator.stdin is not None
        simulator.stdin.write("go\n")
        simulator.stdin.flush()
    codes = [s.wait(timeout=900) for s in simulators]
    wall = time.monotonic() - started
    server = (spent() if spent else float("nan")) - server_before
    stop.set()
    sampler.join()
    if any(codes):
        raise SystemExit(f"scale.py: a simulator failed ({codes}): {_tail(work)}")
    parts = [json.loads((work / f"sim-{i}.json").read_text()) for i in range(processes)]
    figures = _figures(workers, parts, peak[0], wall, audit(url, name, args.epochs))
    connects = figures["connects_per_second"] * wall
    figures["server_ms_per_connection"] = 1e3 * server / connects if connects else float("nan")
    figures["client_ms_per_connection"] = 1e3 * sum(p["cpu"] for p in parts) / connects if connects else float("nan")
    return figures


def _tail(work: Path) -> str:
    return " | ".join(p.read_text(errors="replace")[-1500:] for p in sorted(work.glob("sim-*.log")))


def _figures(workers: int, parts: list[dict[str, Any]], peak: int, wall: float, audited: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {"latency": {"claim": [], "epoch": [], "heartbeat": [], "idle": []}, "claimed_at": [],
                              "claims": [], "trained": [], "writes": [], "codes": [], "errors": []}
    races, connects, warnings = Counter(), Counter(), Counter()
    for part in parts:
        for kind, values in part["latency"].items():
            merged["latency"][kind] += values
        for key in ("claimed_at", "claims", "trained", "writes", "codes", "errors"):
            merged[key] += part[key]
        races.update(part["claim_races"])
        connects.update(part["connects"])
        warnings.update(part["warnings"])
    latency = merged["latency"]
    claimed = sorted(merged["claimed_at"])
    first = claimed[min(workers, len(claimed)) - 1] if claimed else float("nan")
    writes = sorted(w[3] for w in merged["writes"])
    span = writes[-1] - writes[0] if len(writes) > 1 else float("nan")
    runs_done = len(merged["trained"])
    return {
        "workers": workers, "wall": wall, "runs": audited.runs, "complete": audited.complete,
        "codes": Counter(merged["codes"]), "errors": merged["errors"], "warnings": dict(warnings),
        "duplicates": _completed_twice(merged["trained"]), "overlaps": _overlaps(merged["trained"]),
        "retrained_epochs": audited.epochs_trained_twice,
        "optuna_duplicates": audited.optuna_complete_duplicates,
        "non_holder_writes": _non_holder_writes(merged["claims"], merged["writes"]),
        "takeovers": audited.multi_attempt_runs,
        "peak": peak, "peak_per_worker": peak / workers,
        "claims_per_second": workers / first if first > 0 else float("nan"),
        "races_per_claim": races.get("lost", 0) / max(1, races.get("won", 0)),
        "claim_p50": _percentile(latency["claim"], 0.5), "claim_p99": _percentile(latency["claim"], 0.99),
        "epoch_p50": _percentile(latency["epoch"], 0.5), "epoch_p99": _percentile(latency["epoch"], 0.99),
        "beat_p50": _percentile(latency["heartbeat"], 0.5), "beat_p99": _percentile(latency["heartbeat"], 0.99),
        "epochs": len(writes), "epoch_writes_per_second": len(writes) / span if span > 0 else float("nan"),
        "connects_per_second": sum(connects.values()) / wall,
        "per_epoch": connects.get("epoch", 0) / max(1, len(writes)),
        "per_beat": (connects.get("heartbeat", 0) / len(latency["heartbeat"])) if latency["heartbeat"] else float("nan"),
        "per_run": (connects.get("run", 0) + connects.get("claim", 0)) / max(1, runs_done),
        "per_idle_second": connects.get("idle", 0) / max(1, sum(p["polls"] for p in parts)) / POLL_SECONDS,
    }


def _line(r: dict[str, Any], base: dict[str, Any]) -> str:
    return (f"{r['workers']:>4} workers: {r['complete']}/{r['runs']} complete, duplicates {r['duplicates']}, "
            f"takeovers {r['takeovers']} (attempts overlapping {r['overlaps']}), epochs trained twice "
            f"{r['retrained_epochs']}, non-holder epoch rows {r['non_holder_writes']}; peak {r['peak']} "
            f"connections ({r['peak_per_worker']:.2f}/worker); claims {r['claims_per_second']:.1f}/s "
            f"({r['races_per_claim']:.1f} lost races per claim), claim p50/p99 {_ms(r['claim_p50'])}/"
            f"{_ms(r['claim_p99'])} ms (p99 ×{ratio(r['claim_p99'], base['claim_p99']):.1f}); epoch write p50/p99 "
            f"{_ms(r['epoch_p50'])}/{_ms(r['epoch_p99'])} ms (p99 ×{ratio(r['epoch_p99'], base['epoch_p99']):.1f}); "
            f"heartbeat p50/p99 {_ms(r['beat_p50'])}/{_ms(r['beat_p99'])} ms; {r['epoch_writes_per_second']:.1f} "
            f"epoch writes/s; {r['connects_per_second']:.0f} connections/s (CPU per connection: server "
            f"{r['server_ms_per_connection']:.1f} ms, simulators {r['client_ms_per_connection']:.1f} ms); "
            f"{r['wall']:.0f} s")


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.0f}"


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ratios to the baseline, where it degrades, and the cluster it serves."""
    from results.store import GRACE_PERIOD, HEARTBEAT_INTERVAL

    base, top = results[0], results[-1]
    degraded = next((r for r in results[1:] if r["epoch_p99"] >= DEGRADED * base["epoch_p99"]
                     or r["claim_p99"] >= DEGRADED * base["claim_p99"] or r["takeovers"]
                     or r["complete"] < r["runs"]), None)
    figures: dict[str, Any] = {}
    for r in results:
        n = r["workers"]
        figures[f"{n} workers: complete, takeovers"] = f"{r['complete']}/{r['runs']}, {r['takeovers']}"
        figures[f"{n} workers: duplicates (runs completed twice, non-holder epoch rows, Optuna twice)"] = (
            f"{r['duplicates']}, {r['non_holder_writes']}, {r['optuna_duplicates']}")
        figures[f"{n} workers: peak connections per worker"] = r["peak_per_worker"]
        figures[f"{n} workers: claims per second (start-up burst)"] = r["claims_per_second"]
        figures[f"{n} workers: lost claim races per claim"] = r["races_per_claim"]
        figures[f"{n} workers: claim p50, p99 (ms)"] = f"{_ms(r['claim_p50'])}, {_ms(r['claim_p99'])}"
        figures[f"{n} workers: epoch write p50, p99 (ms)"] = f"{_ms(r['epoch_p50'])}, {_ms(r['epoch_p99'])}"
        figures[f"{n} workers: claim p99 ratio to {base['workers']} workers"] = ratio(r["claim_p99"], base["claim_p99"])
        figures[f"{n} workers: epoch-write p99 ratio to {base['workers']} workers"] = ratio(
            r["epoch_p99"], base["epoch_p99"])
    figures["degrades at (claim or epoch-write p99 ≥ 3× baseline, a takeover, or a run left)"] = (
        f"{degraded['workers']} workers (claim p99 ×{ratio(degraded['claim_p99'], base['claim_p99']):.1f}, epoch "
        f"write p99 ×{ratio(degraded['epoch_p99'], base['epoch_p99']):.1f})" if degraded
        else f"not within {top['workers']} workers")
    figures["heartbeat p99 at the largest count vs grace period"] = f"{_ms(top['beat_p99'])} ms of {GRACE_PERIOD:g} s"
    figures["connections per epoch, heartbeat, run; per idle worker-second"] = (
        f"{top['per_epoch']:.1f}, {top['per_beat']:.1f}, {top['per_run']:.1f}; {top['per_idle_second']:.1f}")
    per_gpu = (top["per_epoch"] / REAL_EPOCH_SECONDS + top["per_beat"] / HEARTBEAT_INTERVAL
               + top["per_run"] / (REAL_EPOCHS_PER_RUN * REAL_EPOCH_SECONDS))
    if per_gpu != per_gpu:  # NaN: no run lasted a heartbeat interval
        figures["target: largest cluster served"] = f"n/a: no heartbeat measured (runs under {HEARTBEAT_INTERVAL:g} s)"
        return figures
    figures["connections/s a GPU costs at 60 s epochs (an idle worker)"] = (
        f"{per_gpu:.2f} ({top['per_idle_second']:.2f})")
    sustained = max(r["connects_per_second"] for r in results)
    server_ms = top["server_ms_per_connection"]
    figures["connections/s sustained here (server and simulators on one machine)"] = sustained
    figures["server CPU per connection (ms)"] = server_ms
    bound = "at least " if degraded is None else ""
    here = HEADROOM * sustained / per_gpu
    per_core = HEADROOM * 1e3 / server_ms / per_gpu
    by_connections = MAX_CONNECTIONS / top["peak_per_worker"]
    figures["target: GPUs at 60 s epochs served by this machine (headroom 2×)"] = f"{bound}{here:.0f}"
    figures["target: GPUs at 60 s epochs per server CPU core (headroom 2×)"] = f"{per_core:.0f}"
    figures["target: GPUs within max_connections = 100"] = f"{by_connections:.0f}"
    served = min(per_core, by_connections) if per_core == per_core else min(here, by_connections)
    figures["target: largest cluster served (one server core, default max_connections)"] = f"{served:.0f} GPUs"
    # All its workers starting at once (a Slurm array): each walks the same list of
    # candidates, so a claim loses races to about half the others (measured above).
    share = top["races_per_claim"] / top["workers"]
    herd = served * (share * served + top["per_run"]) * server_ms / 1e3
    figures[f"its start, all at once (≈{share:.2f}·N lost races a claim)"] = f"{herd:.0f} s of one server core"
    return figures


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--as-simulator":
        parser = argparse.ArgumentParser()
        for flag in ("--study", "--storage", "--checkpoints", "--out"):
            parser.add_argument(flag, required=True)
        parser.add_argument("--threads", type=int, required=True)
        parser.add_argument("--epoch-seconds", type=float, required=True)
        return simulate(parser.parse_args(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="25,50,100,200", help="comma-separated worker counts; the first is the baseline")
    parser.add_argument("--runs", type=int, default=1, help="runs per worker")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run")
    parser.add_argument("--epoch-seconds", type=float, default=3.0,
                        help="the sleeping trainer's epoch (a run should outlast a heartbeat interval, 5 s)")
    parser.add_argument("--processes", type=int, default=4, help="processes the simulated workers share")
    args = parser.parse_args()
    try:
        counts = sorted(int(n) for n in args.workers.split(","))
    except ValueError:
        parser.error(f"--workers {args.workers!r}: comma-separated whole numbers, e.g. 25,50,100,200")
    if min(counts) < 1 or args.runs < 1 or args.epochs < 1 or args.processes < 1 or args.epoch_seconds <= 0:
        parser.error("--workers, --runs, --epochs, --processes must be at least 1, --epoch-seconds above 0")
    results = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sweep-scale-") as folder:
        base = postgres_base(stack)
        if base is None:
            return 2
        for workers in counts:
            results.append(measure(base, workers, args, Path(folder)))
            print(_line(results[-1], results[0]), flush=True)
            for error in results[-1]["errors"]:
                print(f"    error: {error}", flush=True)
            if results[-1]["warnings"]:
                print(f"    warnings: {results[-1]['warnings']}", flush=True)
    print_block(f"scale (simulated workers, {args.runs} runs × {args.epochs} epochs of {args.epoch_seconds:g} s "
                f"each; baseline: {counts[0]} workers)", summarize(results))
    # Exactly once is the promise; runs left by an overloaded server (takeovers that
    # spent their retries) are where it degrades, reported above.
    failed = [r["workers"] for r in results if r["duplicates"] or r["non_holder_writes"] or r["optuna_duplicates"]]
    print(f"duplicates: {'none' if not failed else f'FAILED at {failed} workers'}; complete: "
          + ", ".join(f"{r['complete']}/{r['runs']} at {r['workers']}" for r in results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
