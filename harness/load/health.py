"""The load generator's watch on itself: is it placing calls when its schedule says?

A verdict is only as good as the load behind it. If the generator falls
behind its arrival schedule or its event loop stalls, calls leave late or not
at all and the hotline would be blamed for the harness's own overload. This
counts what is needed to tell (`metrics/generator.py` judges it).
"""
from __future__ import annotations

import bisect
import ctypes
import ctypes.util

from harness.metrics.calls import percentile

LATE_BY = 0.1  # a call is late when it leaves more than this after its scheduled arrival


class GeneratorHealth:
    def __init__(self):
        self.offered = 0    # arrivals the schedule released
        self.placed = 0     # calls that left
        self.late = 0       # of those, late by more than LATE_BY
        self.skipped = 0    # arrivals dropped because the schedule ran more than 1 s behind
        self.unplaced = 0   # arrivals still waiting for a caller when the load stopped
        self.lag: list[float] = []  # event-loop oversleep samples, seconds, kept sorted

    def arrival(self) -> None:
        self.offered += 1

    def left(self, scheduled: float, now: float) -> None:
        self.placed += 1
        if now - scheduled > LATE_BY:
            self.late += 1

    def stalled(self, seconds: float) -> None:
        # kept in order as they come: a snapshot each second then never sorts the whole run
        bisect.insort(self.lag, seconds)

    def snapshot(self) -> dict:
        return {"offered": self.offered + self.skipped, "placed": self.placed, "late": self.late,
                "skipped": self.skipped, "unplaced": self.unplaced,
                "loop_lag_p99": percentile(self.lag, 99), "loop_lag_max": self.lag[-1] if self.lag else None,
                "loop_samples": len(self.lag)}


def keep_in_ram() -> bool:
    """Lock the generator's pages in memory as they are touched (mlockall with MCL_ONFAULT).

    A page reclaimed from a running generator stalls it on the next touch (a disk
    read, 100 ms and more on a busy or virtualised machine), and every call in
    flight is timed late. Needs root or CAP_IPC_LOCK; without, nothing changes.
    """
    MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0
    except (OSError, AttributeError):
        return False


def merge(snapshots: list[dict]) -> dict | None:
    """Several workers' snapshots as one: counts add up, the worst loop lag stands."""
    if not snapshots:
        return None
    out = {k: sum(s.get(k) or 0 for s in snapshots)
           for k in ("offered", "placed", "late", "skipped", "unplaced", "loop_samples")}
    for k in ("loop_lag_p99", "loop_lag_max"):
        values = [s[k] for s in snapshots if s.get(k) is not None]
        out[k] = max(values, default=None)
    return out
