"""Per-second series for the timeline chart: offered, answered, failed and active calls. Pure."""
from __future__ import annotations

import math

from harness.metrics.records import CallRecord


def per_second(records: list[CallRecord], start: float, end: float) -> dict[str, list]:
    """Series indexed by whole seconds since `start`.

    offered/answered/failed: attempts started in [t, t+1) and what became of them;
    active: answered calls up at time t (answered_at <= t < ended_at).
    """
    n = max(1, math.ceil(end - start))
    offered, answered, failed, active = [0] * n, [0] * n, [0] * n, [0] * n
    for r in records:
        i = int(r.started_at - start)
        if 0 <= i < n:
            offered[i] += 1
            if r.answered:
                answered[i] += 1
            else:
                failed[i] += 1
        if r.answered_at is not None:
            up_from = max(0, math.ceil(r.answered_at - start))
            up_to = min(n, math.ceil((r.ended_at or end) - start))
            for t in range(up_from, up_to):
                active[t] += 1
    return {"t": list(range(n)), "offered": offered, "answered": answered, "failed": failed,
            "active": active}
