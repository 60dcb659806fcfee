"""A journey drill on the sandbox contact centre: callers hear the IVR, press 1, queue for two
agents and give up as their patience runs out; the drill's ASA, abandonment and waits are
the ACD log's own, call by call."""
import json

import pytest
import yaml

from harness.lab import sandbox
from harness.metrics.journey import wait_of
from harness.report.calls_csv import read_calls_csv
from harness.sip.uac import HEALTH_CALL_PREFIX
from tests.conftest import run_scenario
SCENARIO = """\
name: journey-overload
target: sandbox
sandbox: {pbx_nodes: 1, contact_centre: {groups: {sales: 2, care: 1}, menu: {"1": sales}}}
duration: 20s
seed: 11
load:
  calls_per_second: 1.5
  arrivals: poisson
  journey: {keys: "1", patience: {exponential: 3s}, talk: {exponential: 2s}, longest: 40s}
metrics: {short_abandon: 0s}
sla:
  agent_answer_rate: 10%
"""


IN_FLIGHT = 0.05  # s: an agent's marker on its way when the caller's patience ran out


def crossed(calls, logged) -> set:
    """Calls the ACD answered (or turned away) while the caller, not yet hearing the marker,
    gave up: the ACD's decision and the caller's hang-up within IN_FLIGHT of each other (the
    same race a real queue has; the caller's account stands, an abandon)."""
    return {c.call_id for c in calls if c.abandoned_at is not None
            and any((ev, c.call_id) in logged
                    and abs(logged[(ev, c.call_id)]["t"] - c.abandoned_at) <= IN_FLIGHT
                    for ev in ("answered", "turned away"))}


def test_a_journey_drill_reads_what_the_acd_logged(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(SCENARIO))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    calls = [c for c in read_calls_csv(run / "calls.csv") if c.journey]
    acd = [json.loads(line) for line in
           (sandbox.SandboxConfig().folder / "pbx-1.acd.jsonl").read_text().splitlines()]
    logged = {(e["event"], e["call_id"]): e for e in acd
              if not e["call_id"].startswith(HEALTH_CALL_PREFIX)}
    ids = {c.call_id for c in calls}
    # (an inconclusive run before this one, run again, sent the ACD calls too)
    answered = {c for e, c in logged if e == "answered" and c in ids}
    abandoned = {c for e, c in logged if e == "abandoned" and c in ids}
    assert len(calls) >= 15 and answered and abandoned  # 3 erlangs on 2 agents: both happen
    raced = crossed(calls, logged)
    assert len(raced) <= 3, raced
    answered -= raced
    assert {c.call_id for c in calls if c.agent_at is not None} == answered
    assert {c.call_id for c in calls if c.abandoned_at is not None} == abandoned | raced
    for c in calls:  # each wait as the ACD measured it
        event = "answered" if c.agent_at is not None or c.call_id in raced else \
            "abandoned" if c.abandoned_at else None
        if event:
            assert wait_of(c) == pytest.approx(logged[(event, c.call_id)]["wait"], abs=0.06)
    j = summary["journey"]["overall"]
    assert (j["answered"], j["abandoned"]) == (len(answered), len(abandoned | raced))
    waits = [logged[("answered", c)]["wait"] for c in answered]
    assert j["asa"] == pytest.approx(sum(waits) / len(waits), abs=0.03)
    assert j["abandonment"] == pytest.approx(len(abandoned | raced) /
                                             (len(answered) + len(abandoned | raced)))
    # judged by default where calls have a journey: the connection rate
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert verdicts["agent_answer_rate"]["measured"] == pytest.approx(j["agent_answer_rate"])
