"""A surge of five times the normal rate while one of two contact-centre sites is lost, on the
sandbox (scenarios/sandbox-contact-centre-surge-during-site-loss.yaml): every caller whose
journey an ACD saw to its end reads as that ACD logged it (answered by which group after
which wait, abandoned after which wait, turned away), overflow shows, and the figures are
the records'."""
import json

import pytest
import yaml

from harness.lab import sandbox
from harness.metrics.journey import journey_figures, wait_of
from harness.report.calls_csv import read_calls_csv
from tests.conftest import run_scenario
from tests.e2e.test_journey_drill import crossed

SCENARIO = "scenarios/sandbox-contact-centre-surge-during-site-loss.yaml"


def acd_logs() -> dict:
    out = {}
    for node in ("pbx-1", "pbx-2"):
        path = sandbox.SandboxConfig().folder / f"{node}.acd.jsonl"
        for e in (json.loads(line) for line in path.read_text().splitlines()):
            out[(e["event"], e["call_id"])] = {**e, "node": node}
    return out


def test_surge_during_site_loss_reads_what_both_acds_logged(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(open(SCENARIO)))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    calls = [c for c in read_calls_csv(run / "calls.csv") if c.journey]
    logged = acd_logs()
    fault = summary["faults"][0]
    checked = {"answered": 0, "abandoned": 0, "turned away": 0}
    raced = crossed(calls, logged)  # answered as the caller gave up: the caller's abandon
    assert len(raced) <= 3, raced
    for c in calls:
        if c.call_id in raced:
            checked["abandoned"] += 1
        elif ("answered", c.call_id) in logged:
            e = logged[("answered", c.call_id)]
            assert c.answered_by == e["group"], c.call_id
            assert wait_of(c) == pytest.approx(e["wait"], abs=0.06), c.call_id
            checked["answered"] += 1
        elif ("abandoned", c.call_id) in logged:
            assert c.abandoned_at is not None and c.agent_at is None, c.call_id
            assert wait_of(c) == pytest.approx(logged[("abandoned", c.call_id)]["wait"], abs=0.06)
            checked["abandoned"] += 1
        elif ("turned away", c.call_id) in logged:
            assert c.turned_away == "announcement" and c.agent_at is None, c.call_id
            checked["turned away"] += 1
        else:  # queued on the lost site when it died: its ACD never saw the end
            assert ("queued", c.call_id) in logged and \
                logged[("queued", c.call_id)]["node"] == "pbx-1", c.call_id
            assert c.started_at < fault["started_at"] + 1, c.call_id
    assert all(checked.values()), checked  # the surge made all three happen
    # while the site was lost, new callers went to the other one (until its restart began:
    # the SBC's own probe may mark it up before the rollback's check returns; ci36 saw a call
    # placed 30 ms before that return answered by the restarted pbx-1)
    during = [c for c in calls if fault["started_at"] + 1 <= c.started_at < fault["undo_started"]]
    assert during and all("pbx-2" in c.node for c in during), {c.node for c in during}
    # sales overflowed to care: care answered callers who had waited for sales
    overflowed = [e for (ev, _), e in logged.items() if ev == "answered" and e["overflowed"]]
    assert overflowed and all(e["group"] == "care" for e in overflowed)
    # the drill's figures are the records', overall and for the fault
    j = summary["journey"]
    assert j["overall"]["destinations"] == pytest.approx(journey_figures(calls)["destinations"])
    assert j["overall"]["turned_away"] == checked["turned away"]
    assert j["per_fault"]["site-a-lost"]["calls"] > 0
    html = (run / "report.html").read_text()
    assert "chart-queue" in html and "The caller's journey" in (run / "review.md").read_text()
