"""A drill's OpenTelemetry trace, read back from a real Jaeger (built by .ci/run with go, its
OTLP/HTTP receiver and query API on loopback ports of their own, traces in memory): the span
tree is the drill's (run, load, the fault with its inject, hold and rollback), each span's
start and length are the run's own records to the microsecond, and the verdicts are events
on the root span."""
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness.metrics.records import read_events
from tests.conftest import free_port, light_drill, run_scenario, wait_for


US = 1e6



def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


@pytest.fixture
def jaeger(tmp_path):
    binary = shutil.which("jaeger") or str(Path(__file__).parents[2] / ".ci/bin/jaeger")
    assert Path(binary).exists(), "jaeger is not built (.ci/run builds it into .ci/bin)"
    otlp, query, grpc, health = (free_port() for _ in range(4))
    (tmp_path / "jaeger.yaml").write_text(yaml.safe_dump({
        "service": {"extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                    "pipelines": {"traces": {"receivers": ["otlp"],
                                             "exporters": ["jaeger_storage_exporter"]}},
                    "telemetry": {"metrics": {"level": "none"}}},
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"127.0.0.1:{health}"}},
            "jaeger_query": {"storage": {"traces": "memstore"},
                             "http": {"endpoint": f"127.0.0.1:{query}"},
                             "grpc": {"endpoint": f"127.0.0.1:{grpc}"}},
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": 1000}}}}},
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp}"}}}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}}}))
    proc = subprocess.Popen([binary, "--config", str(tmp_path / "jaeger.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                get(f"http://127.0.0.1:{query}/api/services")
                return True
            except OSError:
                return False
        wait_for(up, 60, what="Jaeger's query API")
        yield {"otlp": f"http://127.0.0.1:{otlp}", "query": f"http://127.0.0.1:{query}"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # it keeps nothing: memory storage
            proc.kill()
            proc.wait(10)


def test_the_drill_trace_read_back_from_jaeger_is_the_drills_own_timeline(isolated, tmp_path,
                                                                            jaeger):
    s = light_drill()
    res, run, summary = run_scenario(tmp_path, s, "--otlp", jaeger["otlp"])
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    assert "span(s) sent to" in res.stdout
    tags = json.dumps({"hotline_drill.run_id": summary["run"]["run_id"]})
    url = f"{jaeger['query']}/api/traces?" + urllib.parse.urlencode(
        {"service": "hotline-drill", "tags": tags, "limit": 5})
    traces = wait_for(lambda: get(url)["data"] or None, 30, what="the trace in Jaeger")
    assert len(traces) == 1
    spans = {sp["operationName"]: sp for sp in traces[0]["spans"]}
    by_id = {sp["spanID"]: sp for sp in traces[0]["spans"]}

    def parent(sp):
        refs = [r for r in sp.get("references", []) if r["refType"] == "CHILD_OF"]
        return by_id[refs[0]["spanID"]]["operationName"] if refs else None

    events = read_events(run / "events.jsonl")
    (inj,) = [e for e in events if e["event"] == "fault_injected"]
    (back,) = [e for e in events if e["event"] == "fault_rolled_back"]
    root = spans[f"drill {s['name']}"]
    fault = spans["fault kill-pbx-1"]
    assert parent(root) is None and parent(spans["load"]) == root["operationName"]
    assert parent(fault) == root["operationName"]
    assert {parent(spans[n]) for n in ("inject", "held", "rollback")} == {"fault kill-pbx-1"}

    def at(t):  # Jaeger keeps microseconds
        return pytest.approx(t * US, abs=2)
    assert root["startTime"] == at(summary["run"]["started_at"])
    assert root["duration"] == at(summary["run"]["ended_at"] - summary["run"]["started_at"])
    assert spans["held"]["startTime"] == at(inj["ts"])
    assert spans["held"]["duration"] == at(back["undo_started"] - inj["ts"])
    assert spans["rollback"]["startTime"] + spans["rollback"]["duration"] == at(back["ts"])
    assert fault["startTime"] == at(inj["ts"] - inj["inject_took"])
    attrs = {t["key"]: t["value"] for t in root["tags"]}
    verdict = "passed" if summary["passed"] else "failed"
    assert attrs["hotline_drill.verdict"] == verdict and attrs["hotline_drill.scenario"] == s["name"]
    logged = {}
    for log in root["logs"]:
        fields = {f["key"]: f["value"] for f in log["fields"]}
        logged[fields.get("event")] = fields
    for v in summary["verdicts"]:
        assert logged[f"verdict {v['target']}"]["passed"] == v["passed"]
