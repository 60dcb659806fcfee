"""Agents' registrations: how many phones a hotline can reach, and how fast they come back
after a fault. Pure.

Each agent's REGISTER transactions are `Attempt`s (when sent, when its final response came,
which, what the registrar granted). From them, as RFC 6076 §4.1-4.2 defines the first two:
  RRD  registration request delay: REGISTER sent -> its 200 (the digest challenge's round
       trip included, as a phone lives it), over the successful registrations;
  IRA  ineffective registration attempts: registrations that ended in no final response,
       408, 500, 503 or 504, over all registrations (a 401/407 answered with credentials is
       part of one registration, not an attempt of its own);
and, for a drill:
  registered agents each second: an agent counts from a 200 until the expiry it granted,
       or until a later registration of it failed with the registrar saying it was gone
       (any final response but 200), whichever comes first;
  back after a fault: for each agent, from the fault's start to its first 200 to a
       REGISTER sent after that start; 50/90/99 % of the agents, and the agents never back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.metrics.calls import percentile

INEFFECTIVE = frozenset({0, 408, 500, 503, 504})  # 0: no final response (timeout)
ATTEMPT_FIELDS = ("agent", "sent_at", "ended_at", "status", "expires", "retry_after")


@dataclass(frozen=True)
class Attempt:
    agent: str
    sent_at: float
    ended_at: float
    status: int              # the final response (0: none came)
    expires: int = 0         # what the registrar granted with a 200
    retry_after: float | None = None


def rrd(attempts: list[Attempt]) -> dict:
    delays = [a.ended_at - a.sent_at for a in attempts if a.status == 200 and a.expires > 0]
    return {"n": len(delays), "p50": percentile(delays, 50), "p95": percentile(delays, 95),
            "max": max(delays, default=None)}


def ira(attempts: list[Attempt]) -> float | None:
    regs = [a for a in attempts if not (a.status == 200 and a.expires == 0)]  # not un-REGISTERs
    return sum(a.status in INEFFECTIVE for a in regs) / len(regs) if regs else None


def registered_each_second(attempts: list[Attempt], start: float, end: float) -> list[int]:
    """Agents registered in each second from `start` (counted where registered at the
    second's start)."""
    n = max(0, int(end - start) + 1)
    out = [0] * n
    for spans in _spans(attempts).values():
        for a, b in spans:
            lo, hi = max(0, math.ceil(a - start)), min(n, math.ceil(b - start))
            for i in range(lo, hi):
                out[i] += 1
    return out


def _spans(attempts: list[Attempt]) -> dict[str, list[tuple[float, float]]]:
    """Per agent, the stretches it was registered: from each 200 to its expiry, cut short by
    a later failure the registrar answered (it no longer knows the agent) or an
    un-REGISTER."""
    by_agent: dict[str, list[Attempt]] = {}
    for a in sorted(attempts, key=lambda a: a.ended_at):  # one pass: thousands of phones
        by_agent.setdefault(a.agent, []).append(a)
    out: dict[str, list[tuple[float, float]]] = {}
    for agent, mine in by_agent.items():
        spans: list[tuple[float, float]] = []
        for a in mine:
            if spans and spans[-1][1] > a.ended_at and (a.status not in (0, 200) or
                                                         (a.status == 200 and a.expires == 0)):
                spans[-1] = (spans[-1][0], a.ended_at)  # told it is gone, or it left
            if a.status == 200 and a.expires > 0:
                if spans and spans[-1][1] >= a.ended_at:  # a refresh: one stretch goes on
                    spans[-1] = (spans[-1][0], a.ended_at + a.expires)
                else:
                    spans.append((a.ended_at, a.ended_at + a.expires))
        out[agent] = spans
    return out


def back_after(attempts: list[Attempt], fault_at: float, agents: list[str]) -> dict:
    """For each agent, seconds from `fault_at` to its first 200 to a REGISTER sent after it;
    the 50th, 90th and 99th percentile over all the agents (None while fewer than that
    share came back) and those that never did."""
    back = {}
    for a in sorted(attempts, key=lambda a: a.ended_at):
        if a.agent not in back and a.sent_at >= fault_at and a.status == 200 and a.expires > 0:
            back[a.agent] = a.ended_at - fault_at
    times = sorted(back.values())
    total = len(agents)

    def share(p: float) -> float | None:
        k = -(-total * p // 100)  # the ceil(p % of the agents)-th to come back
        return times[int(k) - 1] if total and len(times) >= k else None
    return {"p50": share(50), "p90": share(90), "p99": share(99),
            "never": sorted(set(agents) - set(back)), "agents": total}


# what a registrar or proxy answers a call for an agent's number with no phone registered
# (lookup found none: 404) or none answering (480); 486: the agent was on another call
NO_AGENT, BUSY = (404, 480), 486


def agent_calls(records, answers: dict[str, str], agents: set[str]) -> dict:
    """Calls to the agents' own numbers, held to the agents' side call by call: `answers` is
    the agents' own record (Call-ID -> the agent that answered it). `mismatched` lists the
    calls the two sides tell differently: answered on one side only, or by another agent
    than the caller's record names."""
    ours = {r.call_id: r.node for r in records if r.answered and r.node in agents}
    mismatched = sorted(c for c in set(ours) | set(answers) if ours.get(c) != answers.get(c))
    return {"answered": len(ours), "delivered": len(answers),
            "no_agent": sum(r.status in NO_AGENT for r in records),
            "busy": sum(r.status == BUSY for r in records), "mismatched": mismatched}


def registration_report(attempts: list[Attempt], faults: list, start: float, end: float,
                        records=(), answers: dict[str, str] | None = None,
                        storms: list[float] = ()) -> dict | None:
    """The agents' figures for a run: RRD, IRA, registered agents each second, after each
    fault and each storm how long until they were back, and (when the agents took calls:
    `answers`) the calls to them; None when the run had no agents."""
    if not attempts:
        return None
    agents = sorted({a.agent for a in attempts})
    each = registered_each_second(attempts, start, end)
    return {"agents": len(agents), "registers": len(attempts), "rrd": rrd(attempts),
            "ira": ira(attempts), "registered": each,
            "overloaded": sum(a.status == 503 for a in attempts),
            "retry_after": sum(a.retry_after is not None for a in attempts),
            "registered_min": min(each, default=0), "registered_max": max(each, default=0),
            "per_fault": {f.fault_id: back_after(attempts, f.started_at, agents) for f in faults},
            "per_storm": [{"at": at, **back_after(attempts, at, agents)} for at in storms],
            "calls": agent_calls(records, answers, set(agents)) if answers is not None else None}
