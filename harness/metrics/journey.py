"""The contact-centre figures a playbook sets on the caller's journey, not on the SIP 200. Pure.

A call with a journey records when the caller started waiting for an agent (`queued_at`,
after the IVR), when an agent answered (`agent_at`, the marker the inventory names) or when
the caller gave up (`abandoned_at`, patience run out), and when the first prompt came
(`prompt_at`). From those, over any group of calls (a run, an interval, a fault window):

- answered: calls an agent took; abandoned: callers who gave up after waiting at least the
  short-abandon threshold (default 5 s). Shorter abandons (a wrong number, a caller who
  changed their mind) are counted apart and left out of both rates, as COPC and most ACDs do.
- ASA (average speed of answer): the mean wait of answered calls.
- Abandonment rate: abandoned / (answered + abandoned).
- Service level "X within T": answered within T / (answered + abandoned), the formula that
  counts abandons against it (the strictest of the usual three; named in the output).
- Wait p50, p90, p99 and max over answered calls.
- Agent-answer rate: answered / calls with a journey. With a journey it is the answer rate
  the alarm levels read, since the IVR's 200 comes whether or not anyone is reached.
- IVR failure rate: calls the IVR answered (SIP 200) whose first prompt never came (within
  the step's limit) / calls with a journey the IVR answered. A call refused at the SIP
  level counts against the agent-answer rate, not here.
- Destinations (the overflow share per destination): where each journey ended, as a share of
  calls with a journey: each group's agents (the key after the agent marker names it), a
  callback offer, the failure announcement. Callers turned away count as neither answered
  nor abandoned, and against the agent-answer rate.
"""
from __future__ import annotations

import math

from harness.metrics.calls import percentile
from harness.metrics.records import CallRecord

SHORT_ABANDON = 5.0   # s: a caller gone sooner is not counted as abandoning
SERVICE_TIME = 20.0   # s: the T of "80/20"
INTERVAL = 900.0      # s: contact centres report per 15 minutes
SERVICE_FORMULA = "answered within T / (answered + abandoned after the short-abandon threshold)"


def wait_of(r: CallRecord) -> float | None:
    """How long the caller waited for an agent (to the answer, or to giving up)."""
    end = r.agent_at if r.agent_at is not None else r.abandoned_at
    return None if end is None or r.queued_at is None else max(0.0, end - r.queued_at)


def journey_figures(records: list[CallRecord], short_abandon: float = SHORT_ABANDON,
                    service_time: float = SERVICE_TIME) -> dict:
    calls = [r for r in records if r.journey]
    answered = [wait_of(r) for r in calls if r.agent_at is not None and r.queued_at is not None]
    gave_up = [wait_of(r) for r in calls if r.agent_at is None and r.abandoned_at is not None
               and r.queued_at is not None]
    abandoned = [w for w in gave_up if w >= short_abandon]
    ivr = [r for r in calls if r.answered]  # the IVR answered (a SIP failure is not its)
    judged = len(answered) + len(abandoned)
    return {
        "calls": len(calls),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "short_abandons": len(gave_up) - len(abandoned),
        "asa": sum(answered) / len(answered) if answered else None,
        "abandonment": len(abandoned) / judged if judged else None,
        "service_level": sum(w <= service_time for w in answered) / judged if judged else None,
        "service_time": service_time,
        "service_formula": SERVICE_FORMULA,
        "wait": {"p50": percentile(answered, 50), "p90": percentile(answered, 90),
                 "p99": percentile(answered, 99), "max": max(answered, default=None)},
        "agent_answer_rate": len(answered) / len(calls) if calls else None,
        "turned_away": sum(bool(r.turned_away) for r in calls),
        "destinations": destinations(calls),
        "ivr_failure": sum(r.prompt_at is None and r.queued_at is None for r in ivr) / len(ivr)
        if ivr else None,
    }


def destinations(calls: list[CallRecord]) -> dict[str, float]:
    """Share of journeys ending at each destination: a group's agents ("agents: <group>",
    "agents" when no key named one), "callback", "announcement"."""
    counts: dict[str, int] = {}
    for r in calls:
        where = r.turned_away or (f"agents: {r.answered_by}" if r.answered_by else "agents") \
            if (r.turned_away or r.agent_at is not None) else None
        if where:
            counts[where] = counts.get(where, 0) + 1
    return {k: counts[k] / len(calls) for k in sorted(counts)}


def per_interval(records: list[CallRecord], start: float, interval: float = INTERVAL,
                 **kw) -> list[dict]:
    """The figures of each `interval` (default 15 min) from `start`, a call in the interval
    its wait began in (or its INVITE, for one that never reached the queue)."""
    groups: dict[int, list[CallRecord]] = {}
    for r in records:
        if r.journey:
            at = r.queued_at if r.queued_at is not None else r.started_at
            groups.setdefault(int((at - start) // interval), []).append(r)
    return [{"from": start + i * interval, **journey_figures(groups[i], **kw)}
            for i in sorted(groups)]


def occupancy(records: list[CallRecord], start: float, end: float) -> dict[str, list]:
    """Per second from `start`: callers waiting for an agent and callers with an agent, each
    counted in every second it overlapped (the queue panel's lines)."""
    n = max(0, int(end - start) + 1)
    waiting, talking = [0] * n, [0] * n

    def add(series: list[int], a: float | None, b: float | None) -> None:
        if a is None:
            return
        b = end if b is None else b
        for i in range(max(0, int(a - start)), min(n, math.ceil(b - start))):
            series[i] += 1
    for r in records:
        if not r.journey or r.queued_at is None:
            continue
        add(waiting, r.queued_at, r.agent_at if r.agent_at is not None else
            r.abandoned_at if r.abandoned_at is not None else r.ended_at)
        add(talking, r.agent_at, r.ended_at)
    return {"t": list(range(n)), "waiting": waiting, "with_agent": talking}


def journey_report(records: list[CallRecord], faults: list, run_start: float,
                   interval: float = INTERVAL, **kw) -> dict | None:
    """The journey figures overall, per interval, and per fault window (the calls whose wait,
    or whose INVITE if they never waited, began while the fault was in effect); None when no
    call had a journey."""
    mine = [r for r in records if r.journey]
    if not mine:
        return None

    def began(r: CallRecord) -> float:
        return r.queued_at if r.queued_at is not None else r.started_at

    per_fault = {}
    for w in faults:
        end = w.ended_at if w.ended_at is not None else float("inf")
        per_fault[w.fault_id] = journey_figures(
            [r for r in mine if w.started_at <= began(r) < end], **kw)
    return {"overall": journey_figures(mine, **kw),
            "interval": interval, "per_interval": per_interval(mine, run_start, interval, **kw),
            "per_fault": per_fault}
