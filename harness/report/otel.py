"""One OpenTelemetry trace per drill, built from its records after it ran and exported over
OTLP/HTTP to the collector the user names (Jaeger, the OpenTelemetry Collector, a vendor's).

The drill's own clock is the trace's: the root span is the run; a span for the load; one per
fault, with its inject, hold and rollback as children (the window the figures use: from the
target's own record where it keeps one); verdicts, the abort, the steady-state check after
and the data probes' findings are events. Built from events.jsonl and summary.json (pure,
`spans`), so `drill report --otlp` sends the same trace again; sending is `export`.

Why after the run and not live: a collector that is slow or down must never hold up a
drill's timeline or its rollback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SERVICE = "hotline-drill"


@dataclass
class SpanSpec:
    key: str
    name: str
    start: float
    end: float
    parent: str | None = None
    attributes: dict = field(default_factory=dict)
    events: list[tuple[str, float, dict]] = field(default_factory=list)


def _clean(attrs: dict) -> dict:
    """OTel attribute values: str, bool, int, float (None dropped, the rest as text)."""
    return {k: v if isinstance(v, (str, bool, int, float)) else str(v)
            for k, v in attrs.items() if v is not None}


def spans(summary: dict, events: list[dict]) -> list[SpanSpec]:
    """The drill as spans, parents first."""
    sc, run = summary["scenario"], summary["run"]
    first = {e["event"]: e for e in reversed(events)}
    start, end = run["started_at"], run["ended_at"]
    verdict = "aborted" if run.get("aborted") else "inconclusive" if summary.get("inconclusive") \
        else "passed" if summary.get("passed") else "failed"
    root = SpanSpec("run", f"drill {sc['name']}", start, end, None, _clean({
        "hotline_drill.run_id": run["run_id"], "hotline_drill.scenario": sc["name"],
        "hotline_drill.target": sc["target"], "hotline_drill.verdict": verdict,
        "hotline_drill.exit_code": summary.get("exit_code")}))
    out = [root]
    load = first.get("load_started")
    if load:
        span = SpanSpec("load", "load", load["ts"], first.get("run_finished", {}).get("ts", end),
                        "run", _clean({"calls_per_second": load.get("calls_per_second"),
                                       "calls": (summary.get("counts") or {}).get("attempts")}))
        span.events = [("load changed", e["ts"], _clean({"calls_per_second": e.get("calls_per_second")}))
                       for e in events if e["event"] == "load_changed"]
        out.append(span)
    undone = {e["fault_id"]: e for e in events if e["event"] == "fault_rolled_back"}
    for e in events:
        if e["event"] != "fault_injected":
            continue
        fid, back = e["fault_id"], undone.get(e["fault_id"])
        began = e["ts"] - (e.get("inject_took") or 0.0)
        lifted = back["ts"] if back else end
        undo_at = back.get("undo_started") if back else None
        key = f"fault:{fid}"
        out.append(SpanSpec(key, f"fault {fid}", began, lifted, "run", _clean({
            "fault.id": fid, "fault.type": e["type"], "fault.target": e["target"],
            "fault.description": e.get("description")})))
        out.append(SpanSpec(f"{key}:inject", "inject", began, e["ts"], key,
                            _clean({"verified": e.get("verified")})))
        if undo_at is not None:
            out.append(SpanSpec(f"{key}:held", "held", e["ts"], undo_at, key))
            out.append(SpanSpec(f"{key}:rollback", "rollback", undo_at, lifted, key,
                                _clean({"note": back.get("note")})))
    for v in summary.get("verdicts") or []:
        root.events.append((f"verdict {v['target']}", end, _clean({
            "passed": v["passed"], "measured": v.get("measured"), "threshold": v.get("threshold")})))
    if "run_aborted" in first:
        a = first["run_aborted"]
        root.events.append(("aborted", a.get("requested_at") or a["ts"], _clean({"reason": a.get("reason")})))
    if "steady_state_after" in first:
        s = first["steady_state_after"]
        root.events.append(("steady state after", s["ts"], _clean({
            "ok": s.get("ok"), "problems": "; ".join(s.get("problems") or [])})))
    for e in events:
        if e["event"] == "probe_records":
            root.events.append((f"probe {e.get('probe')}", e["ts"], _clean({
                "kind": e.get("kind"), "lag": e.get("lag"), "replayed": e.get("replayed")})))
    return out


def export(specs: list[SpanSpec], endpoint: str, headers: dict | None = None,
           timeout: float = 10.0) -> int:
    """Send the spans as one trace to an OTLP/HTTP endpoint (`…:4318`); how many were taken.
    OSError when the collector refused them or did not answer in time."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces",
                                headers=headers or {}, timeout=timeout)
    results = []

    class Counting(SimpleSpanProcessor):
        def on_end(self, span):
            results.append(exporter.export((span,)))

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(Counting(exporter))
    tracer = provider.get_tracer("hotline_drill")
    live = {}
    ns = lambda t: int(t * 1e9)  # noqa: E731
    for s in specs:
        ctx = trace.set_span_in_context(live[s.parent]) if s.parent else None
        span = tracer.start_span(s.name, context=ctx, start_time=ns(s.start),
                                 attributes=s.attributes)
        for name, at, attrs in s.events:
            span.add_event(name, attributes=attrs, timestamp=ns(at))
        live[s.key] = span
    for s in reversed(specs):  # children end before their parents
        live[s.key].end(end_time=ns(s.end))
    provider.shutdown()
    failed = sum(r != SpanExportResult.SUCCESS for r in results)
    if failed:
        raise OSError(f"{endpoint} refused {failed} of {len(results)} span(s)")
    return len(results)
