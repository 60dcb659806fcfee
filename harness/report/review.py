"""review.md: the post-drill review operators file within 24 hours, pre-filled from the records."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.metrics.alarms import ESCALATION, LEVELS
from harness.metrics.sla import Verdict, fmt


def clock(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"


def key_moments(summary: dict) -> list[tuple[float, str]]:
    """(time, what happened) for the review's timeline, in order."""
    out = []
    for ev in summary["timeline"]:
        e = ev["event"]
        if e == "run_started":
            out.append((ev["ts"], "drill started"))
        elif e == "load_started":
            out.append((ev["ts"], f"load started: {ev['calls_per_second']} calls/s "
                                  f"({ev['users']} callers)"))
        elif e == "load_changed":
            out.append((ev["ts"], f"load changed to {ev['calls_per_second']:g} calls/s"
                                  + (f" over {ev['ramp']:g}s" if ev.get("ramp") else "")))
        elif e == "fault_injected":
            out.append((ev["ts"], f"fault **{ev['fault_id']}** injected: {ev['description']}"
                                  + ("" if ev.get("verified") else " — NOT confirmed")))
        elif e == "fault_rolled_back":
            out.append((ev["ts"], f"fault **{ev['fault_id']}** rolled back: {ev['note']}"))
        elif e == "gameday_revealed":
            out.append((ev["ts"], f"game day plan revealed: {ev['plan']['scenario_name']} "
                                  f"(sealed sha256 {ev['sealed_sha256'][:16]}…)"))
        elif e == "ack":
            out.append((ev["ts"], f"acknowledged by {ev.get('by')}"
                                  + (f": {ev['note']}" if ev.get("note") else "")))
        elif e == "capacity_step":
            out.append((ev["ended"], f"capacity step {ev['rate']:g} calls/s: "
                                     + ("missed " + ", ".join(ev["missed"]) if ev["missed"] else "met")))
        elif e == "run_stopping":
            out.append((ev["ts"], f"drill ended early: {ev['reason']}"))
        elif e == "run_aborted":
            out.append((ev["ts"], f"drill ABORTED: {ev['reason']}"))
        elif e == "steady_state_after":
            out.append((ev["ts"], "steady state after: " +
                        ("healthy" if ev["ok"] else "NOT healthy: " + "; ".join(ev["problems"]))))
    for f in summary["faults"]:
        if f["interruption_start"] is not None:
            out.append((f["interruption_start"], f"first failed call after {f['fault_id']}"))
        if f["interruption_end"] is not None:
            out.append((f["interruption_end"], f"service restored after {f['fault_id']} "
                                               "(first of K answered calls in a row)"))
        out.append((f["started_at"] + f["traffic_shift"],
                    f"traffic shifted away from {f['target']} (last call touched by the fault)"))
    return sorted(out)


def write_review(summary: dict, path: Path) -> None:
    env = Environment(loader=PackageLoader("harness.report", "templates"),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    verdicts = [Verdict(**v) for v in summary["verdicts"]]
    levels = {p["level"] for p in summary["alarm_timeline"]}
    reached = [lvl for lvl in LEVELS if lvl in levels and lvl != "green"]
    text = env.get_template("review.md.j2").render(
        s=summary, verdicts=verdicts, moments=key_moments(summary), clock=clock, fmt=fmt,
        reached=reached, escalation=ESCALATION, t0=summary["run"]["started_at"])
    path.write_text(text)
