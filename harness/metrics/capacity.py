"""Capacity search: per-step verdicts and the knee. Pure.

A step is the calls started while one rate was offered. It passes when
those calls meet every per-call SLA target of the scenario that is switched
on (answer rate, PDD p95, dropped-call rate, media loss, and where the calls
have a journey the contact-centre ones: agent-answer rate, ASA, abandonment,
service level, wait p90). The knee is the highest rate of the passing steps
below the first failing one: with `sla.service_level` set, the service-level
knee of a contact centre, not only the rate where SIP fails.
"""
from __future__ import annotations

from harness.metrics import calls
from harness.metrics.journey import journey_figures
from harness.metrics.records import CallRecord
from harness.metrics.sla import verdicts

STEP_TARGETS = ("answer_rate", "pdd_p95", "dropped_call_rate", "media_loss")
JOURNEY_TARGETS = ("agent_answer_rate", "asa", "abandonment", "service_level", "wait_p90")


def in_window(records: list[CallRecord], start: float, end: float) -> list[CallRecord]:
    return [r for r in records if start <= r.started_at < end]


def step_misses(records: list[CallRecord], sla: dict, **journey_options) -> list[str]:
    """The per-call SLA targets that these calls (one step's) miss; [] when there were none.
    `journey_options`: the scenario's service_time and short_abandon."""
    if not records:
        return ["answer_rate"]  # no call placed at all is not a pass
    fig = calls.call_figures(records)
    step = {k: sla.get(k) for k in STEP_TARGETS}
    if any(r.journey for r in records):
        fig.journey = {"overall": journey_figures(records, **journey_options)}
        step.update({k: sla.get(k) for k in JOURNEY_TARGETS})
    return [v.target for v in verdicts(step, fig) if not v.passed]


def knee(steps: list[dict]) -> float | None:
    """Highest rate met before the first step that missed a target (steps in rate order);
    None when the first step already missed."""
    best = None
    for s in steps:
        if s["missed"]:
            break
        best = s["rate"]
    return best
