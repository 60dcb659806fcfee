"""abort_when: a rule that holds long enough aborts the drill, rolls everything back, exits 3."""
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import yaml

from harness.lab import sandbox
from harness.runner.abort import Watchdog
from harness.runner.journal import Journal
from harness.scenario.model import AbortRule
from tests.conftest import last_run

DRILL = [sys.executable, "-m", "harness.cli"]


def run(tmp_path, scenario: dict):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    res = subprocess.run(DRILL + ["run", str(path), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=180)
    run_dir = last_run(tmp_path / "out")
    return res, json.loads((run_dir / "summary.json").read_text())


def test_answer_rate_rule_aborts_and_rolls_back(isolated, tmp_path):
    res, summary = run(tmp_path, {
        "name": "abort-on-answer-rate", "target": "sandbox", "duration": "60s",
        "load": {"calls_per_second": 4, "hold": "1s", "invite_timeout": "2s"},
        "faults": [{"id": "cut-a", "type": "udp.blackhole", "target": "carrier-a", "at": "2s"},
                   {"id": "cut-b", "type": "udp.blackhole", "target": "carrier-b", "at": "2s"}],
        "abort_when": [{"answer_rate_below": "60%", "for": "2s", "window": "4s"}]})
    assert res.returncode == 3, res.stdout[-2000:]
    assert summary["run"]["aborted"]
    assert summary["run"]["abort_reason"].startswith("abort rule 1 fired: answer rate below 60%")
    assert summary["run"]["elapsed"] < 30  # it did not run the whole 60 s
    rolled = [e for e in summary["timeline"] if e["event"] == "fault_rolled_back"]
    assert sorted(e["fault_id"] for e in rolled) == ["cut-a", "cut-b"]
    assert all("removed" in e["note"] for e in rolled)
    assert Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []


def test_unplanned_node_down_aborts(isolated, tmp_path):
    pidfile = sandbox.inventory().find("pbx-2").process.pidfile
    res, summary = run(tmp_path, {
        "name": "abort-on-node-down", "target": "sandbox", "duration": "60s",
        "load": {"calls_per_second": 2, "hold": "1s"},
        # the planned fault is on the SBC's side; pbx-2 dying is NOT in the plan
        "faults": [{"id": "surprise", "type": "command", "target": "sbc", "at": "2s",
                    "inject": ["sh", "-c", f"kill -9 $(cat {pidfile})"], "rollback": ["true"]}],
        "abort_when": [{"node_down": True, "for": "1s"}]})
    assert res.returncode == 3, res.stdout[-2000:]
    assert "a node outside the fault plan" in summary["run"]["abort_reason"]
    assert "down: pbx-2" in summary["run"]["abort_reason"]


def test_http_probe_rule():
    status = {"code": 200}

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    rule = AbortRule.model_validate({"http": {"url": f"http://127.0.0.1:{srv.server_address[1]}/"},
                                     "for": "2s", "every": "0s"})
    dog = Watchdog([rule], sandbox.inventory())
    run_ = SimpleNamespace(records=[], active={})
    assert dog.check(run_, now=100.0) is None
    status["code"] = 503
    assert dog.check(run_, now=101.0) is None          # holds, but not yet for 2 s
    fired = dog.check(run_, now=103.5)
    assert fired and "answered 503" in fired
    status["code"] = 200
    assert Watchdog([rule], sandbox.inventory()).check(run_, now=200.0) is None
    srv.shutdown()
