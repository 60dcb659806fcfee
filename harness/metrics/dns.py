"""What DNS did to the calls of entry points located by DNS (RFC 3263): how many resolved,
came from the cache within the TTL, or failed (cause dns), which SRV target each took, and
the same per fault window. Pure: records in, a dict out."""
from __future__ import annotations

from collections import Counter

from harness.metrics.calls import in_window, percentile
from harness.metrics.records import CallRecord, FaultWindow


def _counts(calls: list[CallRecord]) -> dict:
    got = Counter(r.dns for r in calls)
    return {"calls": len(calls), "resolved": got["resolved"], "cache": got["cache"],
            "failed": got["failed"]}


def dns_report(records: list[CallRecord], faults: list[FaultWindow]) -> dict | None:
    """None when no call's entry point was located by DNS."""
    by_dns = [r for r in records if r.dns]
    if not by_dns:
        return None
    took = [r.dns_ms for r in by_dns if r.dns == "resolved" and r.dns_ms is not None]
    return {**_counts(by_dns),
            "resolve_ms": {"p50": percentile(took, 50), "p95": percentile(took, 95),
                           "max": max(took, default=None)},
            "targets": dict(Counter(r.entry_target or r.entry_address for r in by_dns
                                    if r.dns != "failed").most_common()),
            "per_fault": [{"fault": f.fault_id, **_counts(in_window(by_dns, f.started_at,
                                                                    f.ended_at))}
                          for f in faults]}

