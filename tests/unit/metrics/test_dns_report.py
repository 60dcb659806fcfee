"""The DNS figures of a drill from its call records: resolved, cached, failed, the targets
taken, and the same per fault window."""
from harness.metrics.dns import dns_report
from harness.metrics.records import CallRecord, FaultWindow


def call(at: float, dns: str, target: str = "", ms: float | None = None) -> CallRecord:
    r = CallRecord(call_id=f"c{at}", started_at=at, dns=dns, entry_target=target, dns_ms=ms,
                   cause="dns" if dns == "failed" else "")
    return r


def test_counts_targets_and_windows():
    calls = [call(1, "resolved", "a", 2.0), call(2, "cache", "a"), call(3, "failed", ms=1.0),
             call(4, "failed", ms=1.0), call(5, "resolved", "b", 4.0), call(6, "")]
    d = dns_report(calls, [FaultWindow("f", "dns.servfail", "dns-path", 2.5, 4.5)])
    assert (d["calls"], d["resolved"], d["cache"], d["failed"]) == (5, 2, 1, 2)
    assert d["targets"] == {"a": 2, "b": 1}
    assert d["resolve_ms"]["max"] == 4.0 and d["resolve_ms"]["p50"] == 3.0
    assert d["per_fault"] == [{"fault": "f", "calls": 2, "resolved": 0, "cache": 0, "failed": 2}]


def test_no_call_by_dns_is_no_figure():
    assert dns_report([call(1, "")], []) is None
