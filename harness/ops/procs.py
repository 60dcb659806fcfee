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
