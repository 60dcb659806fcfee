"""Time to detect: how long the on-call team took to acknowledge a surprise fault. Pure."""
from __future__ import annotations


def time_to_detect(fault_starts: list[float], acks: list[float]) -> float | None:
    """First acknowledgement at or after the first fault's start, minus that start.

    None when no fault was injected or nobody acknowledged after it. An
    acknowledgement before any fault is a false alarm, not a detection.
    """
    if not fault_starts:
        return None
    first = min(fault_starts)
    after = [a for a in acks if a >= first]
    return min(after) - first if after else None
