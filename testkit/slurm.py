"""A throw-away one-node Slurm cluster for the tests, from Debian's `slurm-wlm` and `munge`.

Everything lives in one temporary folder: munged's key (1,024 random bytes, owner
munge, mode 0400), socket and logs; slurmctld's state and slurmd's spool; the generated
`slurm.conf`, which `SLURM_CONF` points the client commands (`sbatch`, `squeue`,
`scontrol`) at. Nothing under /etc is touched, and a munged already running on the
machine is left alone (ours has a socket of its own). The daemons run as root, as on
CI; on CI (CI=true) a missing package fails the tests that need it instead of skipping
them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
_CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo")


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = [path for path in _DAEMONS if not os.access(path, os.X_OK)]
    missing += [name for name in _CLIENTS if shutil.which(name) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing; Debian: apt-get install slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (Debian's munge package makes it: apt-get install munge)"
    if os.geteuid() != 0:
        return "a one-node Slurm cluster needs root (slurmd runs jobs as their users)"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Cluster:
    """A running one-node cluster.

    Args:
        folder: its temporary folder (config, state, spool, logs).
        env: the environment its client commands need (`SLURM_CONF`).
        node: the node's name (this machine's hostname).
    """

    folder: Path
    env: dict[str, str]
    node: str

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=30)

    def logs(self) -> str:
        """The daemons' logs, for a failing test's message."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.folder / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)


def _config(folder: Path, node: str, ports: list[int], cpus: int) -> str:
    return f"""\
ClusterName=sweeptest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/ctld
SlurmdSpoolDir={folder}/d
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=30
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _wait_for(what: str, ready, cluster: Cluster, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"the test cluster's {what} did not come up in {timeout:.0f} s\n{cluster.logs()}")


@contextmanager
def slurm_cluster() -> Iterator[Cluster]:
    """Starts munged, slurmctld and slurmd on this machine; yields the cluster; stops them."""
    folder = Path(tempfile.mkdtemp(prefix="sweep-slurm-"))
    folder.chmod(0o755)  # munged refuses a socket folder others may write
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    for sub in ("ctld", "d"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    munge = pwd.getpwnam("munge")
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    munge_dir = folder / "munge"
    munge_dir.mkdir()
    os.chown(munge_dir, munge.pw_uid, munge.pw_gid)
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, node, _free_ports(2), cpus))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(folder, env, node)
    started: list[Path] = []
    try:
        subprocess.run(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged",
             f"--socket={munge_dir}/munge.socket", f"--key-file={key}",
             f"--pid-file={munge_dir}/munged.pid", f"--log-file={munge_dir}/munged.log",
             f"--seed-file={munge_dir}/munged.seed"],
            check=True, capture_output=True, text=True, timeout=30,
        )
        started.append(munge_dir / "munged.pid")
        # Slurm reads the socket's path from AuthInfo: link it where the config says.
        (folder / "munge.socket").symlink_to(munge_dir / "munge.socket")
        subprocess.run(["/usr/sbin/slurmctld", "-i"], env=env, check=True, capture_output=True, timeout=30)
        started.append(folder / "slurmctld.pid")
        subprocess.run(["/usr/sbin/slurmd"], env=env, check=True, capture_output=True, timeout=30)
        started.append(folder / "slurmd.pid")
        _wait_for("node", lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%T", check=False).stdout, cluster)
        yield cluster
    finally:
        if started:
            subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True, timeout=30)
        for pid_file in reversed(started):
            _stop(pid_file)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(pid_file: Path) -> None:
    """Stops the daemon whose pid the file holds; waits up to 10 s for it to go."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
