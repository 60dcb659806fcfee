"""The SIPp load engine (`engine: sipp`): a real SIPp places the calls; its log lines become
call records, and its own statistics must agree with them."""
import json
import subprocess
import sys
from pathlib import Path

from harness.report.calls_csv import read_calls_csv
from harness.metrics.records import read_events
from tests.conftest import last_run, need

HERE = Path(__file__).parent / "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]


def test_sipp_engine_node_loss_records_match_sipp_statistics(isolated, tmp_path):
    need("sipp")
    res = subprocess.run(DRILL + ["run", str(HERE / "sipp-engine-node-loss.yaml"), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    events = read_events(run / "events.jsonl")
    calls = read_calls_csv(run / "calls.csv")
    totals = [e for e in events if e["event"] == "sipp_totals"]
    # one SIPp per carrier; each one's own count of calls equals the records made from its log
    assert sorted(t["carrier"] for t in totals) == ["carrier-a", "carrier-b", "carrier-c"]
    for t in totals:
        mine = [c for c in calls if c.carrier == t["carrier"]]
        assert t["sipp_total_calls"] == len(mine) > 10, (t, len(mine))
        # calls SIPp aborted itself (no answer at all) are SIPp's failures and our leftovers
        aborted = [c for c in mine if c.reason.startswith("no outcome logged")]
        assert t["sipp_failed"] == len(aborted) and t["sipp_successful"] == t["logged"]
        assert t["exit_code"] == (1 if aborted else 0)  # SIPp's own: 1 when a call failed
    # the rate SIPp was given, and the step it was told over its control port: 6/s, then 12/s
    t0 = next(e["ts"] for e in events if e["event"] == "load_started")

    def rate(a, b):
        return sum(a <= c.started_at - t0 < b for c in calls) / (b - a)
    assert 5.0 <= rate(1, 7) <= 7.0 and 10.5 <= rate(9, 15) <= 13.5, (rate(1, 7), rate(9, 15))
    # the fault, judged on SIPp's calls: pbx-1's calls in progress dropped, new calls went to pbx-2
    summary = json.loads((run / "summary.json").read_text())
    fault = summary["faults"][0]
    start, end = fault["started_at"], fault["undo_started"]  # then the restart brings pbx-1 back
    assert {c.node for c in calls if c.answered and c.started_at < start} == {"pbx-1", "pbx-2"}
    shifted = start + fault["traffic_shift"]
    assert all(c.node == "pbx-2" for c in calls if shifted < c.started_at < end and c.answered)
    spanning = [c for c in calls if c.answered_at and c.answered_at < start < c.planned_end]
    assert any(c.outcome == "dropped" for c in spanning if c.node == "pbx-1")
    assert all(c.outcome == "completed" for c in spanning if c.node == "pbx-2")
    assert all(c.pdd is not None and c.pdd < 1.5 for c in calls if c.answered)
    assert summary["media"]["calls"] == 0  # SIPp sends no RTP: media is not claimed


def test_sipp_engine_refuses_media_measurement(isolated, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 5s\nload:\n  engine: sipp\n  rtp_share: 50%\n")
    res = subprocess.run(DRILL + ["run", str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert f"{bad}:3" in res.stderr and "engine sipp sends no RTP" in res.stderr
