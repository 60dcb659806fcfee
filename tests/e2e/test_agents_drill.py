"""Agents' phones in a drill on the sandbox: twenty phones register with the SBC (the
hotline's registrar), the SBC is SIGKILLed for 2 s (its location table lost), and the drill
reports when they were back, bounded by the phones' own timers; after the drill the
registrar's table is empty (every phone un-REGISTERed), and a drill asking for agents of a
target with no registrar is refused before anything runs."""
import json

import pytest
import yaml

from harness.lab import sandbox
from harness.lab.registrar import read_location
from tests.conftest import run_scenario

EXPIRES, REFRESH, RETRY, TIMEOUT = 10, 0.8, 1.0, 1.0

SCENARIO = f"""\
name: agents-registrar-loss
target: sandbox
sandbox: {{pbx_nodes: 1}}
duration: 22s
load: {{calls_per_second: 1, hold: 1s}}
agents: {{count: 20, expires: {EXPIRES}s, refresh: {REFRESH}, retry: {RETRY}s,
          timeout: {TIMEOUT}s, spread: 8s}}
faults:
  - {{id: registrar-lost, type: process.kill, target: sbc, at: 9s, duration: 2s}}
sla:
  answer_rate: null
  failover_time: null
  traffic_shift: null
  dropped_call_rate: null
  reregistration_p90: 12s
"""


def test_agents_come_back_after_the_registrar_is_lost(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(SCENARIO))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    reg = summary["registration"]
    assert reg["agents"] == 20 and reg["registered_max"] == 20
    back = reg["per_fault"]["registrar-lost"]
    fault = summary["faults"][0]
    # no phone can be back before its own refresh falls due after the loss, and none later
    # than a whole refresh period, the restart, one timed-out REGISTER and one retry
    bound = EXPIRES * REFRESH + (fault["ended_at"] - fault["started_at"]) + TIMEOUT + RETRY + 1.5
    assert back["never"] == [] and back["p99"] is not None and back["p99"] <= bound, back
    assert reg["ira"] and reg["ira"] > 0  # refreshes fell due while it was dead
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "registration" for e in events) == reg["registers"]
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert verdicts["reregistration_p90"]["measured"] == pytest.approx(back["p90"])
    # every phone left: the registrar's own table is empty
    assert read_location(sandbox.SandboxConfig().folder / sandbox.LOCATION) == {}
    assert "agents: 20 phones" in res.stdout


def test_agents_need_a_registrar(tmp_path):
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(
        {"name": "no-registrar", "entry_points": [{"name": "e", "address": "127.0.0.1:5999"}]}))
    (tmp_path / "s.yaml").write_text("name: x\ntarget: inv.yaml\nduration: 5s\n"
                                     "agents: {count: 2}\n")
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.yaml"),
                          "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "s.yaml:4" in res.stdout + res.stderr and \
        "names no registrar" in res.stdout + res.stderr, res.stdout + res.stderr
