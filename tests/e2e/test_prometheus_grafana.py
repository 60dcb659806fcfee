"""Drill figures and stop conditions on the monitoring a team already runs, tested end to
end against Debian's real Prometheus scraping Debian's real Pushgateway (both started here on
loopback, on ports of their own):

- `drill run --pushgateway` pushes the run's metrics; Prometheus scrapes them and its PromQL
  API gives back the run's own figures;
- an `abort_when: prometheus:` rule fires against the real server once the queried series
  exists for its `for` (never sooner), the drill aborts and rolls back;
- `--grafana` POSTs the fault windows and the verdict as annotations. Grafana itself cannot run
  here (no Debian package, no registry): a stand-in HTTP server records what it is sent, and
  the test checks that against summary.json.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness.metrics.records import read_events
from harness.runner.engine import new_journal
from tests.conftest import free_port, last_run, light_drill, run_scenario, wait_for


DRILL = [sys.executable, "-m", "harness.cli"]



def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture
def monitoring(tmp_path):
    """A Pushgateway and a Prometheus scraping it every second, on loopback ports of their own
    (chosen free; tried again where another process took one first: a server that could not
    bind has exited, and the one answering there would be someone else's)."""
    for tool in ("prometheus", "prometheus-pushgateway"):
        assert shutil.which(tool), f"{tool} is not installed (.ci/run installs it)"
    for attempt in range(3):
        pg, prom = free_port(), free_port()
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                                "static_configs": [{"targets": [f"127.0.0.1:{pg}"]}]}]}))
        # memory only: Debian's build persists to one file under /var/lib by default, so
        # every Pushgateway on the machine would start with what the last one held
        procs = [subprocess.Popen(["prometheus-pushgateway", "--persistence.file=",
                                   f"--web.listen-address=127.0.0.1:{pg}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / f'tsdb{attempt}'}",
                                   f"--web.listen-address=127.0.0.1:{prom}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            wait_for(lambda: any(p.poll() is not None for p in procs) or (
                ready(f"http://127.0.0.1:{pg}/-/ready") and
                ready(f"http://127.0.0.1:{prom}/-/ready")), 30, what="Prometheus, Pushgateway")
            if all(p.poll() is None for p in procs):
                yield {"pushgateway": f"http://127.0.0.1:{pg}",
                       "prometheus": f"http://127.0.0.1:{prom}"}
                return
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(10)
    pytest.fail("Prometheus and its Pushgateway could not listen on free ports, three times")


def promql(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def push(gateway: str, text: str, job: str = "hotline") -> float:
    """Put a series on the Pushgateway, as an exporter of the hotline's would; when."""
    req = urllib.request.Request(f"{gateway}/metrics/job/{job}", data=text.encode(),
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=5):
        return time.time()


def start_drill(tmp_path: Path, scenario: dict):
    """Run a drill as a user does, in the background; (its process, out folder, events.jsonl)
    once its fault is in."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    # one run: a rerun of an inconclusive one would begin with what the test pushed last
    proc = subprocess.Popen(DRILL + ["run", str(path), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HOTLINE_DRILL_RERUN_INCONCLUSIVE": "0"})

    def in_or_over():
        events = next(out.glob("*/events.jsonl"), None)
        if events is not None and '"fault_injected"' in events.read_text():
            return events
        if proc.poll() is not None:
            raise AssertionError("the drill ended before its fault: " + proc.stdout.read()[-3000:])
    events = wait_for(in_or_over, 90, what="the fault")
    return proc, out, events


class GrafanaStandIn:
    """Records POSTs to /api/annotations, as Grafana's HTTP API takes them (a stand-in)."""

    def __init__(self):
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.append((self.path, self.headers.get("Authorization"), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": 1, "message": "Annotation added"}')

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_pushed_figures_come_back_from_promql_and_grafana_gets_the_windows(isolated, tmp_path,
                                                                           monitoring,
                                                                           monkeypatch):
    grafana = GrafanaStandIn()
    monkeypatch.setenv("HD_TEST_GRAFANA_TOKEN", "glsa_test_token_123")
    try:
        s = light_drill()
        res, run, summary = run_scenario(
            tmp_path, s, "--pushgateway", monitoring["pushgateway"], "--grafana", grafana.url,
            "--grafana-token", "${HD_TEST_GRAFANA_TOKEN}")
    finally:
        grafana.close()
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    name = summary["scenario"]["name"]
    # what Prometheus scraped from the Pushgateway is the run's own figures
    passed = wait_for(lambda: promql(monitoring["prometheus"],
                                     f'hotline_drill_passed{{scenario="{name}"}}'), 15,
                      what="the pushed series in Prometheus")
    assert float(passed[0]["value"][1]) == (1.0 if summary["passed"] else 0.0)
    answered = promql(monitoring["prometheus"],
                      f'hotline_drill_calls{{scenario="{name}",outcome="answered"}}')
    assert float(answered[0]["value"][1]) == summary["counts"]["answered"]
    # the annotations: one per fault window, then the verdict, with the token as Bearer
    assert "glsa_test_token_123" not in res.stdout + res.stderr
    (fault,) = summary["faults"]
    paths, auths, bodies = zip(*grafana.got)
    assert set(paths) == {"/api/annotations"} and set(auths) == {"Bearer glsa_test_token_123"}
    assert [b["time"] for b in bodies] == [int(fault["started_at"] * 1000),
                                           int(summary["run"]["started_at"] * 1000)]
    assert bodies[0]["timeEnd"] == int(fault["undo_started"] * 1000)
    assert "fault:process.kill" in bodies[0]["tags"] and "kill-pbx-1" in bodies[0]["text"]
    verdict = "passed" if summary["passed"] else "failed"
    assert f"verdict:{verdict}" in bodies[1]["tags"]


def test_a_promql_abort_rule_fires_against_real_prometheus_once_it_held_for_its_time(
        isolated, tmp_path, monitoring):
    """The rule asks for a series nobody has pushed yet; the test pushes it once the drill's
    fault is in. The drill aborts, not before the series was scrapeable for the rule's `for`
    (2 s), and rolls the fault back."""
    s = light_drill()
    s["duration"] = "60s"
    s["faults"][0]["duration"] = "50s"
    s["abort_when"] = [{"prometheus": {"url": monitoring["prometheus"],
                                       "query": "hotline_drill_test_alarm > 0"}, "for": "2s"}]
    assert promql(monitoring["prometheus"], "hotline_drill_test_alarm") == []  # not yet
    proc, out, events = start_drill(tmp_path, s)
    try:
        pushed = push(monitoring["pushgateway"], "hotline_drill_test_alarm 1\n", job="alarm")
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stdout[-3000:]
    run = last_run(out)
    (aborted,) = [e for e in read_events(run / "events.jsonl") if e["event"] == "run_aborted"]
    assert "Prometheus query 'hotline_drill_test_alarm > 0'" in aborted["reason"]
    assert "1 sample(s)" in aborted["reason"]
    # the condition must hold for 2 s after Prometheus first saw the series (≥ the push)
    assert aborted["requested_at"] >= pushed + 2.0, (aborted["requested_at"] - pushed)
    assert aborted["requested_at"] <= pushed + 2.0 + 10.0  # scrape, rule interval, slack
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["aborted"] and new_journal().open_faults() == []




def test_a_promql_probe_reads_the_hotlines_own_metric_before_during_and_after_the_fault(
        isolated, tmp_path, monitoring):
    """A metric of the hotline's (pushed here: 1 before the fault, 7 while it holds, 2 once it
    is lifted) sampled by a PromQL probe through the drill: each sample is what Prometheus
    held then (a scrape behind the pushes at most), and the report's before, during and after
    are those values."""
    gw = monitoring["pushgateway"]
    push(gw, "hotline_sbc_errors 1\n")
    wait_for(lambda: promql(monitoring["prometheus"], "hotline_sbc_errors"), 15, what="scrape")
    s = light_drill()
    s["probes"] = [{"type": "prometheus", "id": "sbc-errors", "url": monitoring["prometheus"],
                    "query": "sum(hotline_sbc_errors)", "every": "0.5s"}]
    proc, out, events = start_drill(tmp_path, s)
    try:
        seven = push(gw, "hotline_sbc_errors 7\n")
        wait_for(lambda: '"fault_rolled_back"' in events.read_text(), 60, what="the rollback")
        two = push(gw, "hotline_sbc_errors 2\n")
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    # (4: the generator fell behind its schedule beside other tests; the probe's samples
    # are the monitoring's, whatever the calls' verdict)
    assert proc.returncode in (0, 1, 4), stdout[-3000:]
    run = last_run(out)
    (samples,) = [e["samples"] for e in read_events(run / "events.jsonl")
                  if e["event"] == "promql_samples"]
    lag = 2.5  # a scrape (1 s) and the sampling step, with room
    assert all(v == 1.0 for t, v, _ in samples if t < seven)
    assert all(v == 7.0 for t, v, _ in samples if seven + lag <= t < two)
    assert all(v == 2.0 for t, v, _ in samples if t >= two + lag)
    assert all(e is None for _, _, e in samples) and len(samples) >= 30
    summary = json.loads((run / "summary.json").read_text())
    (p,) = summary["promql"]
    (f,) = p["per_fault"]
    assert p["probe"] == "sbc-errors" and f["fault"] == "kill-pbx-1"
    assert f["before"]["mean"] == 1.0 and f["during"]["max"] == 7.0 and f["after"]["last"] == 2.0
    assert "sum(hotline_sbc_errors)" in (run / "report.html").read_text()


def test_a_promql_probe_prometheus_refuses_stops_the_drill_before_anything_is_injected(
        isolated, tmp_path, monitoring):
    s = light_drill()
    s["probes"] = [{"type": "prometheus", "id": "typo", "url": monitoring["prometheus"],
                    "query": "sum(rate(hotline_sbc_errors[30s]"}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(s))
    res = subprocess.run(DRILL + ["run", str(path), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "probe typo" in res.stdout + res.stderr and "400" in res.stdout + res.stderr
    assert not list((tmp_path / "out").glob("*/events.jsonl"))
