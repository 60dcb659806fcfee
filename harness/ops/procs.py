"""Local process handles: pid files, /proc state, detached start.

A process is known by pid *and* start time, so a recycled pid is never
signalled by mistake (the process faults and the sandbox both rely on it).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    state, start = fields[0], int(fields[19])
    if state in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)  # reap our own child if it is one
        except ChildProcessError:
            pass
        return None
    return state, start


def read_pid(pidfile: str) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def start_process(argv: list[str], pidfile: str, cwd: str | None, log: str | None) -> int:
    """Start a detached process (own session), write its pidfile, return its pid."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log:
            out.close()
    Path(pidfile).write_text(str(proc.pid))
    return proc.pid


def spawn_bounded(argv: list[str], env: dict | None = None) -> tuple[int, int | None]:
    """Start a helper that stops by itself (a stressor, a bulk sender) in a session of its
    own, so that it outlives a killed drill for `drill recover` to stop, and its whole group
    can be signalled: (pid, start time)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    st = proc_state(proc.pid)
    return proc.pid, (st[1] if st else None)


def stop_group(pid: int) -> None:
    """SIGTERM to a process group, SIGKILL to what is left of it after 5 s; returns once
    nothing of it runs (or 3 s more)."""
    import signal
    import time

    def left() -> bool:
        try:
            os.killpg(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while left() and time.time() < deadline:
            time.sleep(0.05)
        if not left():
            return

