"""Capacity search: per-step verdicts and the knee. Pure.

A step is the calls started while one rate was offered. It passes when
those calls meet every per-call SLA target of the scenario that is switched
on (answer rate, PDD p95, dropped-call rate, media loss). The knee is the
highest rate of the passing steps below the first failing one.
"""
from __future__ import annotations

from harness.metrics import calls
from harness.metrics.records import CallRecord
from harness.metrics.sla import verdicts

STEP_TARGETS = ("answer_rate", "pdd_p95", "dropped_call_rate", "media_loss")


def in_window(records: list[CallRecord], start: float, end: float) -> list[CallRecord]:
    return [r for r in records if start <= r.started_at < end]


def step_misses(records: list[CallRecord], sla: dict) -> list[str]:
    """The per-call SLA targets that these calls (one step's) miss; [] when there were none."""
    if not records:
        return ["answer_rate"]  # no call placed at all is not a pass
    step = {k: sla.get(k) for k in STEP_TARGETS}
    return [v.target for v in verdicts(step, calls.call_figures(records)) if not v.passed]


def knee(steps: list[dict]) -> float | None:
    """Highest rate met before the first step that missed a target (steps in rate order);
    None when the first step already missed."""
    best = None
    for s in steps:
        if s["missed"]:
            break
        best = s["rate"]
    return best
