"""Call-level metrics over call records: answer rate, PDD, drops, media. Pure functions."""
from __future__ import annotations

from harness.metrics.records import CallRecord
from harness.metrics.sla import Figures


def in_window(records: list[CallRecord], start: float | None = None,
              end: float | None = None) -> list[CallRecord]:
    """Attempts started in [start, end)."""
    return [r for r in records
            if (start is None or r.started_at >= start) and (end is None or r.started_at < end)]


def answer_rate(records: list[CallRecord], start: float | None = None,
                end: float | None = None) -> float | None:
    """Answered attempts / attempts started in the window; None when there were none."""
    window = in_window(records, start, end)
    if not window:
        return None
    return sum(r.answered for r in window) / len(window)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def pdd_stats(records: list[CallRecord]) -> dict[str, float | None]:
    """PDD (first 180/183, else the 200, minus INVITE sent) p50 and p95 over answered calls."""
    values = [r.pdd for r in records if r.pdd is not None]
    return {"p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values) if values else None}


def dropped_call_rate(records: list[CallRecord]) -> float | None:
    """Answered calls that ended abnormally / answered calls."""
    answered = [r for r in records if r.answered]
    if not answered:
        return None
    return sum(r.outcome == "dropped" for r in answered) / len(answered)


def media_summary(records: list[CallRecord]) -> dict[str, float | None]:
    """Loss (share of expected packets not received), longest gap, mean jitter, over calls with media."""
    media = [r for r in records if r.answered and r.media and r.rtp_expected > 0]
    if not media:
        return {"calls": 0, "loss": None, "max_gap": None, "jitter_ms_mean": None}
    expected = sum(r.rtp_expected for r in media)
    received = sum(min(r.rtp_received, r.rtp_expected) for r in media)
    return {"calls": len(media), "loss": (expected - received) / expected,
            "max_gap": max(r.rtp_max_gap for r in media),
            "jitter_ms_mean": sum(r.rtp_jitter_ms for r in media) / len(media)}


def counts(records: list[CallRecord]) -> dict[str, int]:
    """Calls by outcome; with digest authentication also how many were challenged and how
    many failed on it (cause `auth`: refused credentials, or none for the realm); over TLS
    trunks, how many connections the calls opened (the first per trunk, then one per loss:
    each is the handshake of the call that opened it)."""
    out = {"attempts": len(records), "answered": 0, "completed": 0, "dropped": 0, "failed": 0}
    challenged = auth_failed = tls_opened = tls_reused = 0
    for r in records:
        out["answered"] += r.answered
        out[r.outcome] = out.get(r.outcome, 0) + 1
        challenged += r.challenged
        auth_failed += r.cause == "auth"
        tls_opened += r.tls_handshake_ms is not None
        tls_reused += r.tls_reused
    if challenged or auth_failed:
        out["challenged"], out["auth_failed"] = challenged, auth_failed
    if tls_opened or tls_reused:
        out["tls_connections"], out["tls_reused"] = tls_opened, tls_reused
    return out


def calls_by_node(records: list[CallRecord], start: float | None = None,
                  end: float | None = None) -> dict[str, int]:
    """Answered attempts per node among attempts started in [start, end)."""
    out: dict[str, int] = {}
    for r in in_window(records, start, end):
        if r.answered:
            out[r.node or "?"] = out.get(r.node or "?", 0) + 1
    return out


def call_figures(records: list[CallRecord]) -> Figures:
    """The figures every set of calls has (a whole run, or one step of a capacity search)."""
    return Figures(attempts=len(records), answered=sum(r.answered for r in records),
                   answer_rate=answer_rate(records), pdd=pdd_stats(records),
                   dropped_call_rate=dropped_call_rate(records),
                   media=media_summary(records))
