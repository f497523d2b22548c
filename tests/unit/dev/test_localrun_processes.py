"""Process groups of the local stack: a group holding only zombies is stopped, not running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from wechat_datacube_dev.localrun.processes import group_alive


def test_a_group_of_only_zombies_is_not_alive() -> None:
    """A member that died unreaped (PID 1 of a container may never reap) must not hold up a stop."""
    child = os.fork()
    if child == 0:  # the child: a group of its own, then exit without being waited for
        os.setpgid(0, 0)
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _state(child) != "Z":
            time.sleep(0.01)
        assert _state(child) == "Z"
        os.killpg(child, 0)  # still found by a signal-0 probe ...
        assert not group_alive(child)  # ... yet nothing in it runs
    finally:
        os.waitpid(child, 0)
    assert not group_alive(child)


def test_a_group_with_a_running_member_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert group_alive(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not group_alive(proc.pid)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
