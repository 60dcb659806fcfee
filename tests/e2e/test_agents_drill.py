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
from harness.report.calls_csv import read_calls_csv
from tests.conftest import last_run, run_scenario

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


DIAL = f"""\
name: agents-take-calls
target: sandbox
sandbox: {{pbx_nodes: 1}}
duration: 22s
load: {{calls_per_second: 2, hold: 1s, dial: agents}}
agents: {{count: 10, expires: {EXPIRES}s, refresh: {REFRESH}, retry: {RETRY}s,
          timeout: {TIMEOUT}s, spread: 4s, ring: 0.2s}}
faults:
  - {{id: registrar-lost, type: process.kill, target: sbc, at: 8s, duration: 2s}}
sla:
  answer_rate: null
  failover_time: null
  traffic_shift: null
  dropped_call_rate: null
"""


def test_calls_to_agents_reach_their_phones_and_find_none_until_they_are_back(isolated, tmp_path):
    """Each call dials the next agent's number. Before the registrar is lost every call is
    answered by the agent it dialled; once it is back with an empty table, a call finds its
    agent only after that agent's phone registered again: 404 before, answered after (the
    phones' own REGISTERs say when). A call whose BYE was lost with the registrar leaves its
    agent on it (no session timer ends it): every later call to that agent is 486, and only
    to such an agent. The agents' own count agrees with the callers', call by call."""
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(DIAL))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    calls = summary["registration"]["calls"]
    assert calls["mismatched"] == [] and calls["delivered"] == calls["answered"] > 10, calls
    assert calls["no_agent"] > 0, calls
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    fault = summary["faults"][0]
    first, back = {}, {}  # agent -> its first 200 to a REGISTER; the first sent once the
    for e in sorted((e for e in events if e["event"] == "registration"),  # registrar restarted
                    key=lambda e: e["ended_at"]):
        if e["status"] == 200 and e["expires"] > 0:
            first.setdefault(e["agent"], e["ended_at"])
            if e["sent_at"] >= fault["undo_started"]:
                back.setdefault(e["agent"], e["ended_at"])
    recs = read_calls_csv(run / "calls.csv")
    assert {r.callee for r in recs} == {f"agent{i:04d}" for i in range(1, 11)}
    stuck = {}  # agent -> when the call whose BYE was lost began: the agent is on it still
    for r in recs:
        if r.answered and r.bye_sent_at and r.bye_status != 200:
            stuck.setdefault(r.callee, r.started_at)
    assert sum(r.status == 486 for r in recs) == calls["busy"]
    for r in recs:
        if r.status == 486:
            assert r.started_at > stuck[r.callee], r
            continue
        if r.callee in stuck and r.started_at > stuck[r.callee]:
            assert not r.answered, r
        if r.answered:
            assert r.node == r.callee, r  # the agent it dialled, by the Contact its answer named
        if r.status == 404:  # the registrar knew no phone for this number yet: before the
            # phone's first REGISTER, or after the registrar's restart (the INVITE may have
            # been sent while it was dead, and answered when it was back) before its return
            assert r.started_at <= first[r.callee] + 0.05 or \
                fault["undo_started"] <= r.ended_at and r.started_at <= back[r.callee] + 0.05, r
        elif first[r.callee] + 0.05 < r.started_at < fault["started_at"] - 0.5 or \
                r.started_at > back.get(r.callee, 1e18) + 0.05:
            assert r.answered, r
    assert "calls to agents:" in res.stdout


def test_a_killed_drill_leaves_its_agents_to_drill_recover(isolated, tmp_path):
    """A drill SIGKILLed while its ten phones are registered leaves them in the registrar's
    table (nothing of the drill is left to un-REGISTER them); the journal holds them open,
    and `drill recover` takes every one out (Contact: *, with the credentials from the
    inventory's password file): the registrar's own table is empty, the journal closed."""
    import signal
    import subprocess
    import sys

    from harness.runner.journal import Journal
    from tests.conftest import free_udp_port, wait_for
    from tests.integration.test_registration import start_registrar

    port, pbx_port = free_udp_port(), free_udp_port()
    pbx = subprocess.Popen([sys.executable, "-m", "harness.lab.pbx", "--name", "pbx-1",
                            "--listen", f"127.0.0.1:{pbx_port}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    # the SBC and registrar outlives the drill, as a real one does
    registrar = start_registrar(port, tmp_path, node=f"127.0.0.1:{pbx_port}")
    location = tmp_path / "location.json"
    auth = [{"username": "agent", "password_file": str(tmp_path / "pw"), "realm": "sandbox"}]
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({
        "name": "own-registrar",
        "entry_points": [{"name": "sbc", "address": f"127.0.0.1:{port}", "auth": auth}],
        "registrar": {"address": f"127.0.0.1:{port}", "domain": "hotline.test",
                      "auth": auth}}))
    (tmp_path / "s.yaml").write_text(
        "name: killed-with-agents\ntarget: inv.yaml\nduration: 60s\n"
        "load: {calls_per_second: 0.2, hold: 1s}\n"
        "sla: {answer_rate: null, failover_time: null, traffic_shift: null,"
        " dropped_call_rate: null}\n"
        "agents: {count: 10, expires: 60s}\n")
    drill = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.yaml"),
                              "-o", str(tmp_path / "out")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(read_location(location)) == 10, 30, what="ten phones registered")
        drill.send_signal(signal.SIGKILL)
        drill.wait(10)
        assert len(read_location(location)) == 10  # left behind by the killed drill
        journal = Journal(tmp_path / "state" / "journal.jsonl")
        (entry,) = journal.open_faults()
        assert entry["type"] == "agents.registered" and "s3cret" not in json.dumps(entry)
        res = subprocess.run([sys.executable, "-m", "harness.cli", "recover"], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "10 agents un-REGISTERed" in res.stdout
        assert read_location(location) == {} and journal.open_faults() == []
    finally:
        if drill.poll() is None:
            drill.kill()
        for proc in (registrar, pbx):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def test_a_storm_in_a_drill_brings_every_phone_back_from_a_new_flow(isolated, tmp_path):
    """agents.storm_at: at that moment every phone takes a new flow and REGISTERs at once;
    the drill's figures say when they were back, each phone's first REGISTER after the
    storm is sent at once, and the registrar's table ends empty."""
    scenario = yaml.safe_load(SCENARIO)
    scenario.update(name="agents-storm", duration="12s", faults=[])
    scenario["agents"].update(count=20, spread="2s", storm_at=["6s"])
    scenario["sla"].pop("reregistration_p90")
    res, run, summary = run_scenario(tmp_path, scenario)
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    (storm,) = [e for e in events if e["event"] == "agents_storm"]
    assert storm["agents"] == 20
    (back,) = summary["registration"]["per_storm"]
    assert back["at"] == storm["ts"] and back["never"] == [] and back["p99"] < 1.0, back
    first = {}
    for e in events:
        if e["event"] == "registration" and e["sent_at"] >= storm["ts"]:
            first.setdefault(e["agent"], e["sent_at"])
    assert len(first) == 20 and max(first.values()) - storm["ts"] < 0.5
    assert read_location(sandbox.SandboxConfig().folder / sandbox.LOCATION) == {}
    assert "back after the storm" in res.stdout
    html = (run / "report.html").read_text()
    assert "Agents' phones: registered" in html and 'id="chart-agents"' in html
    assert "storm at " in html


def test_sigterm_ends_a_drill_with_agents_within_a_second_and_they_leave(isolated, tmp_path):
    """SIGTERM while twenty phones are registered and taking calls: the drill exits 3, every
    phone's un-REGISTER was answered within a second of the signal, the journal holds
    nothing open and the registrar's own table is empty."""
    import signal
    import subprocess
    import sys

    from harness.runner.journal import Journal
    from tests.conftest import wait_for

    scenario = yaml.safe_load(DIAL)
    scenario.update(name="agents-sigterm", duration="60s", faults=[])
    scenario["agents"].update(count=20, spread="2s")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    location = sandbox.SandboxConfig().folder / sandbox.LOCATION
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.yaml"),
                             "-o", str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: len(read_location(location)) == 20, 40, what="twenty phones registered")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out[-3000:]
    run = last_run(tmp_path / "out")
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    aborted = next(e for e in events if e["event"] == "run_aborted")
    left = [e for e in events if e["event"] == "registration" and e["expires"] == 0
            and e["sent_at"] >= aborted["requested_at"] - 0.01]
    assert {e["agent"] for e in left} == {f"agent{i:04d}" for i in range(1, 21)}
    assert all(e["status"] == 200 for e in left)
    assert max(e["ended_at"] for e in left) - aborted["requested_at"] < 1.0
    assert Journal(tmp_path / "state" / "journal.jsonl").open_faults() == []
    assert read_location(location) == {}
