"""Child processes that can always be stopped completely: one process group each.

Airflow components fork (api-server workers, LocalExecutor workers, task processes,
log servers). Signalling only the pid we started would leave those behind, so every
child is started as the leader of a new session/process group and stopped by
signalling the whole group: SIGTERM, a grace period, then SIGKILL for whatever is
left of the group. A new session also keeps a terminal's Ctrl-C away from the
children: the launcher decides the order in which things stop.

Children and their logs are private to the user: the api-server writes the generated
admin password to a file and prints it to its log, and task logs hold what tasks print.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

#: Files a child (and its own children) creates get mode 0600, directories 0700.
PRIVATE_UMASK = 0o077


class ManagedProcess:
    """A child process leading its own process group, with its output in a log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start ``args`` in a new session; stdout and stderr are appended to ``log_path`` (mode 0600).

        The child runs with :data:`PRIVATE_UMASK`, whatever the caller's umask: what it writes
        (the api-server's password file, task logs) is the user's alone.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                list(args), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        return cls(name, popen, log_path)

    @property
    def pid(self) -> int:
        """Also the process-group id (the child leads its own group)."""
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the whole group; False if no member of the group is left."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def group_alive(self) -> bool:
        """Whether any process of the group still exists (the leader may be gone already)."""
        return self.running() or group_alive(self.pid)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member that runs (a zombie does not).

    ``killpg(pgid, 0)`` also finds zombies: a member that died after its parent waits for
    PID 1 to reap it, and in a container PID 1 often never does. Where ``/proc`` exists the
    members' states are read instead; elsewhere ``killpg`` is the answer.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but not ours
        return True
    states = _member_states(pgid)
    return states is None or any(state != "Z" for state in states)


def _member_states(pgid: int) -> list[str] | None:
    """The states (R, S, Z, ...) of the processes in group ``pgid`` from ``/proc``; None without ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    states = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return states


def stop_processes(processes: Iterable[ManagedProcess], *, grace: float = 30.0) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds in total, then SIGKILL the rest."""
    procs = list(processes)
    for proc in procs:
        proc.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    # Leaders are reaped now (or about to be killed); sweep up group members they left.
    while time.monotonic() < deadline and any(p.group_alive() for p in procs):
        time.sleep(0.2)
    for proc in procs:
        if proc.group_alive():
            proc.signal_group(signal.SIGKILL)
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    # SIGKILL is not instant for members the kernel is still tearing down.
    killed = time.monotonic() + 10
    while time.monotonic() < killed and any(p.group_alive() for p in procs):
        time.sleep(0.1)
