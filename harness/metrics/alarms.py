"""Alarm levels on answer rate (MISSION.md): green >= 90 %, yellow 85-90 %, orange 80-85 %, red < 80 %."""
from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

from harness.metrics.records import CallRecord

LEVELS = ("green", "yellow", "orange", "red")
ESCALATION = {
    "green": "none",
    "yellow": "call in the first reserve agents",
    "orange": "call in the second reserve and switch to backup lines",
    "red": "call in the third reserve and activate the DR site",
}


def reached(r: CallRecord) -> bool:
    """What the alarm levels count as answered: an agent's answer on a call with a journey
    (the IVR's 200 comes whether or not anyone is reached), else the SIP answer."""
    return r.agent_at is not None if r.journey else r.answered


def alarm_level(rate: float | None) -> str:
    if rate is None or rate >= 0.90:
        return "green"
    if rate >= 0.85:
        return "yellow"
    if rate >= 0.80:
        return "orange"
    return "red"


def alarm_timeline(records: list[CallRecord], start: float, end: float, window: float,
                   step: float = 1.0) -> list[tuple[float, float | None, str]]:
    """(t, answer rate over the trailing window, level) every `step` seconds from start to end:
    the answer rate of the attempts started in [max(start, t - window), t), as `answer_rate`
    counts it (the agent-answer rate for calls with a journey), read from running sums over
    the sorted starts (a long soak has millions)."""
    calls = sorted((r.started_at, reached(r)) for r in records)
    starts = [s for s, _ in calls]
    answered = list(accumulate((a for _, a in calls), initial=0))
    out, t = [], start + step
    while t <= end + 1e-9:
        lo, hi = bisect_left(starts, max(start, t - window)), bisect_left(starts, t)
        rate = (answered[hi] - answered[lo]) / (hi - lo) if hi > lo else None
        out.append((t, rate, alarm_level(rate)))
        t += step
    return out


def worst_level(timeline: list[tuple[float, float | None, str]]) -> str:
    return max((lvl for _, _, lvl in timeline), key=LEVELS.index, default="green")
