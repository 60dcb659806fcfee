"""Each failover figure of a fault in words, with the calls that bound it (its evidence).

One source for the console, review.md and report.html, so the three never
tell the same figure differently.
"""
from __future__ import annotations

from typing import Callable


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} s"


def outage_sentence(f: dict, clock: Callable[[float | None], str]) -> str:
    o = f["outage"]
    if o["start"] is None or o["length"] <= o["resolution"]:
        return "Outage: none — calls kept being answered all through the fault " \
               "(no gap between answers longer than the spacing of attempts)."
    bound = f"after call `{o['last_answered']}`" if o["last_answered"] else "from the fault's start"
    if not o["over"]:
        return f"Outage: **not over** when the records end — no call answered from " \
               f"{clock(o['start'])} ({bound}), {_s(o['length'])} at least."
    return f"Outage (no call answered at all): **{_s(o['length'])}** ± {o['resolution']:.3f} s, " \
           f"{clock(o['start'])} to {clock(o['end'])} — {bound}, until call " \
           f"`{o['first_answered']}` was answered."


def recovery_sentence(f: dict, pdd_good: float, clock: Callable[[float | None], str]) -> str:
    r = f["recovery"]
    rule = f"good calls (answered within {pdd_good:.3f} s) back to at least {r['level']:.0%} " \
           f"of attempts over every {r['window']:g} s window (≥ {r['min_attempts']} attempts)"
    if r["at"] is None:
        return f"Failover time: **never recovered** within the records — {rule} never held again; " \
               f"{r['bad_attempts']} new call(s) after the fault's start were not good."
    if f["failover_time"] == 0:
        return f"Failover time: 0 s — the first new call after the fault's start was already a " \
               f"good one and {rule} held from then on."
    return f"Failover time: **{_s(f['failover_time'])}** — until {rule}; the recovered stretch " \
           f"begins with call `{r['first_good']}`, answered at {clock(r['at'])}; " \
           f"{r['bad_attempts']} new call(s) before it were not good."


def shift_sentence(f: dict) -> str:
    s = f["shift"]
    touched = "failed, not a good call" + (f", or answered by {', '.join(f['nodes'])}" if f["nodes"] else "")
    if s["touched"] == 0:
        return f"Traffic shift: 0 s — no new call was touched by the fault ({touched})."
    if s["never"]:
        return f"Traffic shift: **traffic never shifted** — new calls were still touched by the " \
               f"fault ({touched}) until it ended; the last was `{s['last_touched']}`, " \
               f"+{s['seconds']:.3f} s after the fault's start."
    return f"Traffic shift: **{_s(s['seconds'])}** — the last new call the fault touched " \
           f"({touched}) was `{s['last_touched']}`; none after it."


def fault_sentences(f: dict, pdd_good: float, clock: Callable[[float | None], str]) -> list[str]:
    return [outage_sentence(f, clock), recovery_sentence(f, pdd_good, clock), shift_sentence(f)]
