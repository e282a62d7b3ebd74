"""Many machines for real, on PostgreSQL: workers on two "machines" (own hostnames, one
clock 45 s ahead) share a study without taking each other's runs, a sweep lives
through a restart of its database server, and workers wait out a connection limit.

`make test-long`. Under CI=true a missing PostgreSQL, `faketime` or `unshare` fails
these tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from testkit.postgres import missing_reason, restartable_cluster
from results.store.result_store import ResultStore
from testkit.tiny_sweeps import write_sweep

SWEEP = [sys.executable, "-m", "sweep_runner"]


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    reason = f"{', '.join(missing)} not installed (Debian: faketime, util-linux)" if missing else None
    if reason is None and os.geteuid() != 0:
        reason = "unshare -u needs root (a UTS namespace of its own)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _create(sweep: Path, url: str, cwd: Path) -> None:
    created = subprocess.run([*SWEEP, "run", str(sweep), "--storage", url, "--max-trials", "0"],
                             cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert created.returncode == 0, created.stderr


# libfaketime works around: with its monotonic offset every timed wait (a
# `threading.Event.wait`, the heartbeat's) lasts 45 s longer, since glibc's
# `sem_clockwait` is not intercepted; with FAKETIME_DONT_FAKE_MONOTONIC its
# `clock_nanosleep` wrapper fails `time.sleep` with EINVAL. So the fast machine's
# processes keep a true monotonic clock and sleep through `select`.
_SLEEP_SHIM = """import select, time

def _sleep(seconds):
    if seconds > 0:
        select.select([], [], [], seconds)

time.sleep = _sleep
"""


def _machine(hostname: str, command: list[str], log: Path, *, clock: str | None = None) -> subprocess.Popen:
    """`command` on a "machine" of its own: a UTS namespace with its own hostname,
    under `faketime` when its clock is off (its wall clock only, as on a machine
    whose clock is not synchronised)."""
    faked = ["faketime", "-f", clock] if clock else []
    env = _env()
    if clock:
        shim = log.parent / f"{hostname}-shim"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(_SLEEP_SHIM)
        env = _env(FAKETIME_DONT_FAKE_MONOTONIC="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p))
    with open(log, "ab") as stream:
        return subprocess.Popen(
            ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *faked, *command],
            env=env, stdout=stream, stderr=subprocess.STDOUT,
        )


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(2400)
def test_a_machine_whose_clock_is_45_s_ahead_takes_no_live_run(tmp_path: Path, postgres_url: str) -> None:
    _require("unshare", "faketime")
    sweep = write_sweep(tmp_path, "clocks", epochs=3, space="weight_decay = [0.05, 0.1, 0.2, 0.4]", train_size=256)
    _create(sweep, postgres_url, tmp_path)
    checkpoints = tmp_path / "shared"  # the folder every machine mounts
    worker = [*SWEEP, "worker", "clocks", "--storage", postgres_url, "--workers", "1",
              "--checkpoints", str(checkpoints), "--log-format", "plain"]
    on_time = _machine("node-a", worker, tmp_path / "node-a.log")
    ahead = _machine("node-b", worker, tmp_path / "node-b.log", clock="+45s")
    for process, name in ((on_time, "node-a"), (ahead, "node-b")):
        assert process.wait(2000) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    with ResultStore(postgres_url) as store:
        runs = store.runs("clocks")
    # Every run complete with one attempt: the fast clock took nobody's live run.
    logs = "".join(p.read_text(errors="replace")[-4000:] for p in sorted(checkpoints.glob("clocks/**/*.log")))
    assert [(r["state"], r["attempts"]) for r in runs] == [("complete", 1)] * 4, (
        [(r["label"], r["state"], r["attempts"], r["host"], r["failure_reason"]) for r in runs], logs)
    # And both machines trained (the test would prove nothing with one).
    assert {r["host"] for r in runs} == {"node-a", "node-b"}
    assert "faketime" not in (tmp_path / "node-b.log").read_text()


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(2400)
def test_a_sweep_lives_through_a_restart_of_its_database(tmp_path: Path) -> None:
    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    sweep = write_sweep(tmp_path, "restart", epochs=6, space="weight_decay = [0.05, 0.2]", train_size=256)
    with restartable_cluster() as cluster:
        process = subprocess.Popen(
            [*SWEEP, "run", str(sweep), "--storage", cluster.url, "--workers", "2",
             "--checkpoints", str(tmp_path / "checkpoints"), "--log-format", "plain"],
            cwd=tmp_path, env=_env(SWEEP_GRACE_PERIOD="10", SWEEP_HEARTBEAT_INTERVAL="2"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            with ResultStore(cluster.url) as store:
                deadline = time.monotonic() + 1200
                while not any(store.epochs(r["id"]) for r in store.runs("restart")):
                    assert time.monotonic() < deadline and process.poll() is None, "no epoch stored"
                    time.sleep(1)
                (run_id,) = [r["id"] for r in store.runs("restart") if store.epochs(r["id"])][:1]
                before = len(store.epochs(run_id))
            cluster.stop()  # a restart, a fail-over: 15 s without a server
            time.sleep(15)
            cluster.start()
            output, _ = process.communicate(timeout=1800)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, output[-4000:]
        assert "Traceback" not in output, output[-4000:]
        with ResultStore(cluster.url) as store:
            runs = store.runs("restart")
            epochs = {r["id"]: [e["epoch"] for e in store.epochs(r["id"])] for r in runs}
    # Finished, nothing lost, nothing taken over: the holders beat again before the
    # grace period after the server came back was over.
    assert [(r["state"], r["attempts"]) for r in runs] == [("complete", 1)] * 2, runs
    assert all(found == list(range(1, 7)) for found in epochs.values()), epochs
    assert before < 6
    logs = "".join(p.read_text() for p in (tmp_path / "checkpoints" / "restart").glob("worker-*.log"))
    assert "the database is unreachable" in logs and "the database is back" in logs


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(1800)
def test_a_sweep_runs_behind_pgbouncer_in_transaction_mode(tmp_path: Path) -> None:
    """Debian's pgbouncer (1.18: no prepared statements in transaction mode) between
    the workers and the server: a sweep completes through it."""
    reason = missing_reason() or (None if shutil.which("pgbouncer") or os.path.exists("/usr/sbin/pgbouncer")
                                  else "pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from testkit.postgres import _as_postgres_popen, _free_port

    sweep = write_sweep(tmp_path, "bounced", epochs=2, space="weight_decay = [0.05, 0.2]", train_size=128)
    with restartable_cluster() as cluster:
        server = cluster.url.rsplit("@", 1)[1]  # 127.0.0.1:PORT/sweeps
        host_port, database = server.split("/")
        port = _free_port()
        folder = Path(tempfile.mkdtemp(prefix="sweep-bouncer-"))
        (folder / "users.txt").write_text('"postgres" ""\n')
        (folder / "bouncer.ini").write_text(
            f"[databases]\n{database} = host=127.0.0.1 port={host_port.split(':')[1]} dbname={database}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
            f"auth_file = {folder / 'users.txt'}\npool_mode = transaction\nmax_client_conn = 500\n"
            f"default_pool_size = 10\nunix_socket_dir =\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {folder / 'bouncer.log'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            for path in folder.iterdir():
                shutil.chown(path, "postgres", "postgres")
        bouncer = _as_postgres_popen([shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(folder / "bouncer.ini")])
        try:
            time.sleep(2)
            url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
            done = subprocess.run([*SWEEP, "run", str(sweep), "--storage", url, "--workers", "2",
                                   "--checkpoints", str(tmp_path / "checkpoints"), "--log-format", "plain"],
                                  cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1500)
        finally:
            bouncer.terminate()
            bouncer.wait(30)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with ResultStore(cluster.url) as store:
            runs = store.runs("bounced")
    assert [r["state"] for r in runs] == ["complete"] * 2


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(1800)
def test_workers_wait_out_a_connection_limit(tmp_path: Path, postgres_url: str) -> None:
    """A server at its connection limit refuses new connections ("too many
    connections"): the workers and their children wait and retry, as for an outage,
    and every run completes. (200 simulated workers on a 200-connection server died
    of it, benchmarks/scale.py.)"""
    import sqlalchemy

    database = postgres_url.rsplit("/", 1)[1]
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # superusers are exempt from connection limits
        connection.exec_driver_sql("CREATE ROLE sweeper LOGIN")
        connection.exec_driver_sql(f'GRANT ALL ON DATABASE "{database}" TO sweeper')
        connection.exec_driver_sql("GRANT ALL ON SCHEMA public TO sweeper")
    admin.dispose()
    url = postgres_url.replace("postgres@", "sweeper@", 1)
    sweep = write_sweep(tmp_path, "limits", epochs=2, space="weight_decay = [0.05, 0.1, 0.2]", train_size=256)
    _create(sweep, url, tmp_path)
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # three workers want up to three connections each
        connection.exec_driver_sql("ALTER ROLE sweeper CONNECTION LIMIT 2")
    admin.dispose()
    log = tmp_path / "workers.log"
    with open(log, "wb") as stream:
        workers = subprocess.run(
            [*SWEEP, "worker", "limits", "--storage", url, "--workers", "3", "--log-format", "plain"],
            cwd=tmp_path, env=_env(SWEEP_OUTAGE_LIMIT="600"), stdout=stream, stderr=subprocess.STDOUT,
            timeout=1500,
        )
    logs = log.read_text(errors="replace") + "".join(
        p.read_text(errors="replace")[-3000:] for p in sorted(tmp_path.glob("checkpoints/limits/**/*.log")))
    assert workers.returncode == 0, logs[-6000:]
    with ResultStore(postgres_url) as store:
        runs = store.runs("limits")
    # Complete, each in one attempt: a refused connection spends no retry.
    assert [(r["state"], r["attempts"]) for r in runs] == [("complete", 1)] * 3, (
        [(r["label"], r["state"], r["attempts"], r["failure_reason"]) for r in runs], logs[-6000:])
    assert "too many connections" in logs  # the limit was met, or the test proves nothing
