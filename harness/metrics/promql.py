"""A PromQL probe's figures (pure): the hotline's own metric before, during and after each
fault, from the samples taken through the drill. `before` is every sample before the fault
began, `during` those while it held (injection to the start of its rollback), `after` those
once it was lifted (a scrape interval or two lags behind: read it as the monitoring saw it)."""
from __future__ import annotations

from statistics import mean


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"samples": len(values), "min": min(values), "mean": mean(values),
            "max": max(values), "last": values[-1]}


def promql_figures(event: dict, windows) -> dict:
    samples = [(t, v) for t, v, _ in event["samples"]]
    errors = [e for _, _, e in event["samples"] if e]
    values = [v for _, v in samples if v is not None]
    per_fault = []
    for w in windows:
        held_until = w.undo_started or w.ended_at or float("inf")
        lifted = w.ended_at or float("inf")
        per_fault.append({
            "fault": w.fault_id,
            "before": _stats([v for t, v in samples if v is not None and t < w.started_at]),
            "during": _stats([v for t, v in samples
                              if v is not None and w.started_at <= t < held_until]),
            "after": _stats([v for t, v in samples if v is not None and t >= lifted])})
    return {"probe": event["probe"], "query": event["query"], "samples": len(samples),
            "empty": sum(v is None for _, v in samples) - len(errors), "errors": len(errors),
            "first_error": errors[0] if errors else None, "overall": _stats(values),
            "per_fault": per_fault}
