"""review.md: the post-drill review operators file within 24 hours, pre-filled from the records."""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.metrics.alarms import ESCALATION, LEVELS
from harness.metrics.sla import Verdict, fmt
from harness.report.explain import clock, fault_sentences, primaries


def _steady(ev: dict) -> str:
    return "steady state after: " + ("healthy" if ev["ok"] else "NOT healthy: " + "; ".join(ev["problems"]))


# event -> what the review's timeline says of it (events not listed are left out)
MOMENTS = {
    "run_started": lambda ev: "drill started",
    "load_started": lambda ev: f"load started: {ev['calls_per_second']} calls/s ({ev['users']} callers)",
    "load_changed": lambda ev: f"load changed to {ev['calls_per_second']:g} calls/s"
                               + (f" over {ev['ramp']:g}s" if ev.get("ramp") else ""),
    "fault_injected": lambda ev: f"fault **{ev['fault_id']}** injected: {ev['description']}"
                                 + ("" if ev.get("verified") else " — NOT confirmed"),
    "fault_rolled_back": lambda ev: f"fault **{ev['fault_id']}** rolled back: {ev['note']}",
    "gameday_revealed": lambda ev: f"game day plan revealed: {ev['plan']['scenario_name']} "
                                   f"(sealed sha256 {ev['sealed_sha256'][:16]}…)",
    "ack": lambda ev: f"acknowledged by {ev.get('by')}" + (f": {ev['note']}" if ev.get("note") else ""),
    "capacity_step": lambda ev: f"capacity step {ev['rate']:g} calls/s: "
                                + ("missed " + ", ".join(ev["missed"]) if ev["missed"] else "met"),
    "run_stopping": lambda ev: f"drill ended early: {ev['reason']}",
    "run_aborted": lambda ev: f"drill ABORTED: {ev['reason']}" + (
        f" during {ev['phase']}, everything rolled back {ev['rolled_back_in']:.2f} s later"
        if ev.get("phase") else ""),
    "steady_state_after": _steady,
}


def key_moments(summary: dict) -> list[tuple[float, str]]:
    """(time, what happened) for the review's timeline, in order."""
    out = [(ev["ended"] if ev["event"] == "capacity_step" else ev["ts"], MOMENTS[ev["event"]](ev))
           for ev in summary["timeline"] if ev["event"] in MOMENTS]
    for f in summary["faults"]:
        o, r = f["outage"], f["recovery"]
        if o["start"] is not None and o["length"] > o["resolution"]:
            out.append((o["start"], f"no call answered any more ({f['fault_id']}): outage begins"))
            if o["end"] is not None:
                out.append((o["end"], f"calls answered again: outage of {o['length']:.3f} s ends"))
        if r["at"] is not None and f["failover_time"]:
            out.append((r["at"], f"recovered from {f['fault_id']}: good calls back and staying"))
        if f["shift"]["touched"] and not f["shift"]["never"]:
            out.append((f["started_at"] + f["shift"]["seconds"],
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
        reached=reached, escalation=ESCALATION, t0=summary["run"]["started_at"],
        explain=lambda f: fault_sentences(f, summary), primaries=primaries)
    path.write_text(text)
