"""A contact-centre queue served by registered agents' phones, on the sandbox
(scenarios/sandbox-contact-centre-registered-agents.yaml), held call by call to both ends'
own accounts: every caller the ACD logged as answered was delivered to a registered phone
on an agent leg that phone answered (the agents' own record names the same agent for the
same leg), no agent is on two callers at once, and every caller who heard the agent marker
is one the ACD logged as answered. The registrar killed for 3 s comes back with an empty
table: no caller is delivered to an agent before that agent's phone registered again.
"""
import csv
import json

import yaml

from harness.lab import sandbox
from harness.lab.registrar import read_location
from harness.report.calls_csv import read_calls_csv
from tests.conftest import run_scenario

SCENARIO = "scenarios/sandbox-contact-centre-registered-agents.yaml"


def test_a_queue_served_by_registered_phones_reads_as_both_ends_logged(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(open(SCENARIO)))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    folder = sandbox.SandboxConfig().folder
    # the ACD's log, for this run's callers (it also holds a run before, where an
    # inconclusive run was run again)
    ours = {r["call_id"] for r in csv.DictReader(open(run / "calls.csv"))}
    log = [e for x in (folder / "pbx-1.acd.jsonl").read_text().splitlines()
           if (e := json.loads(x)).get("call_id") in ours or "call_id" not in e]
    answered = {e["call_id"]: e for e in log if e["event"] == "answered"}
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    took = {e["call_id"]: e["agent"] for e in events if e["event"] == "agent_answered"}
    assert len(answered) >= 10, len(answered)
    # each answered caller: a leg the phones' desk answered, by the agent the ACD names
    assert {e["leg"]: e["agent"] for e in answered.values()} == \
        {leg: took[leg] for leg in (e["leg"] for e in answered.values())}
    assert set(took) == {e["leg"] for e in answered.values()}  # no leg answered unlogged
    ended = {e["call_id"]: e["t"] for e in log if e["event"] == "ended"}
    by_agent: dict[str, list] = {}
    for cid, e in answered.items():
        by_agent.setdefault(e["agent"], []).append((e["t"], ended.get(cid, float("inf"))))
    for agent, spans in by_agent.items():  # one caller at a time
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (agent, spans)
    calls = [c for c in read_calls_csv(run / "calls.csv") if c.journey]
    heard = {c.call_id for c in calls if c.agent_at is not None}
    assert heard <= set(answered) and len(heard) >= len(answered) - 2
    # the restarted registrar knows no phone until it REGISTERs again: no caller is
    # delivered to an agent between the restart and that agent's return
    fault = summary["faults"][0]
    back = {}
    for e in sorted((e for e in events if e["event"] == "registration"), key=lambda e: e["ended_at"]):
        if e["sent_at"] >= fault["undo_started"] and e["status"] == 200 and e["expires"] > 0:
            back.setdefault(e["agent"], e["ended_at"])
    assert summary["registration"]["per_fault"]["registrar-lost"]["never"] == []
    ring = yaml.safe_load(open(SCENARIO))["agents"]["ring"]
    for e in answered.values():
        # its leg sent after the restarted registrar wrote its empty table (and the ACD
        # read it, within a tick): the agent had registered again by then
        if e["t"] - float(ring.rstrip("s")) > fault["ended_at"] + 0.1:
            assert e["t"] >= back[e["agent"]], e
    assert read_location(folder / sandbox.LOCATION) == {}
