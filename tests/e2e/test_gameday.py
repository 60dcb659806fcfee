"""Surprise game days through `drill gameday` and `drill ack`, against the sandbox.

A real HTTP server in the test receives the webhooks; on-call's
acknowledgement is the real `drill ack` command.
"""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario.gameday import verify
from harness.metrics.records import read_events
from harness.runner.journal import Journal
from tests.conftest import drill_ack, free_tcp_port, run_events, wait_for

POOL = Path(__file__).parent / "gameday-pool"
DRILL = [sys.executable, "-m", "harness.cli"]


@pytest.fixture
def webhook(http_sink):
    """The webhook receiver: (url, a function giving the JSON bodies received so far)."""
    url, got = http_sink
    return f"{url}/hook", lambda: [json.loads(g["body"]) for g in got]


def events_of(got, name):
    return [e for e in got if e["event"] == name]


def start_gameday(out, hook_url, ack_port, *extra):
    return subprocess.Popen(DRILL + ["gameday", "--pool", str(POOL), "--webhook", hook_url,
                                     "--ack-listen", f"127.0.0.1:{ack_port}", "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_gameday_sealed_plan_webhooks_and_time_to_detect(isolated, tmp_path, webhook):
    hook_url, bodies = webhook
    ack_port = free_tcp_port()
    proc = start_gameday(tmp_path / "out", hook_url, ack_port, "--window", "25s")
    try:
        armed = wait_for(lambda: events_of(bodies(), "gameday_armed"), 30, what="armed webhook")[0]
        public = tmp_path / "out" / "gamedays" / f"{armed['gameday_id']}.json"
        record = json.loads(public.read_text())
        assert record["sealed_sha256"] == armed["sealed_sha256"]
        assert record["plan"] is None  # not revealed while armed
        assert sorted(armed["pool"]) == ["gd-kill-pbx-1", "gd-pause-pbx-2"]

        started = wait_for(lambda: events_of(bodies(), "gameday_started"), 40, what="started webhook")[0]
        run_dir = Path(started["run_dir"])
        wait_for(lambda: any(e["event"] == "fault_injected"
                             for e in run_events(run_dir)), 30, what="the fault")
        assert armed["gameday_id"] in drill_ack(ack_port, "on-call-1", "SBC alarm")
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out

    # before the start, nothing printed names the drawn scenario
    drawn = started["scenario"]
    before_start = out.split("drawn")[0]
    assert armed["sealed_sha256"] in before_start and drawn not in before_start

    # the revealed plan matches the hash committed at arming, and was followed
    gd = json.loads((run_dir / "gameday.json").read_text())
    assert gd["sealed_sha256"] == armed["sealed_sha256"] and verify(gd["plan"], armed["sealed_sha256"])
    plan = gd["plan"]
    assert plan["scenario_name"] == drawn
    assert plan["armed_at"] <= plan["start_at"] <= plan["window_end"] - 8
    events = read_events(run_dir / "events.jsonl")
    run_started = next(e["ts"] for e in events if e["event"] == "run_started")
    assert run_started >= plan["start_at"]
    assert json.loads(public.read_text())["plan"] == plan

    # time to detect = first acknowledgement after the fault - the fault's start
    fault_ts = next(e["ts"] for e in events if e["event"] == "fault_injected")
    ack_ts = next(e["ts"] for e in events if e["event"] == "ack")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["detection"]["time_to_detect"] == pytest.approx(ack_ts - fault_ts)
    assert summary["gameday"]["plan_matches_seal"] is True
    ttd = next(v for v in summary["verdicts"] if v["target"] == "time_to_detect")
    assert ttd["passed"] and ttd["threshold"] == 60 and "on-call-1" in ttd["detail"]
    assert "time to detect" in (run_dir / "review.md").read_text().lower()

    # webhooks: armed, started, finished, in that order, one game day
    assert [e["event"] for e in bodies()] == ["gameday_armed", "gameday_started", "gameday_finished"]
    assert {e["gameday_id"] for e in bodies()} == {armed["gameday_id"]}
    finished = bodies()[-1]
    assert finished["exit_code"] == 0 and finished["time_to_detect"] == pytest.approx(ack_ts - fault_ts)
    assert Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []


def test_gameday_sigterm_mid_drill_rolls_back_and_notifies_abort(isolated, tmp_path, webhook):
    hook_url, bodies = webhook
    proc = start_gameday(tmp_path / "out", hook_url, free_tcp_port(), "--window", "9s")
    try:
        started = wait_for(lambda: events_of(bodies(), "gameday_started"), 40, what="started webhook")[0]
        run_dir = Path(started["run_dir"])
        wait_for(lambda: any(e["event"] == "fault_injected"
                             for e in run_events(run_dir)), 30, what="the fault")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, out
    aborted = events_of(bodies(), "gameday_aborted")
    assert len(aborted) == 1 and "SIGTERM" in aborted[0]["reason"]
    assert bodies()[-1]["event"] == "gameday_finished" and bodies()[-1]["exit_code"] == 3
    events = read_events(run_dir / "events.jsonl")
    assert [e["event"] for e in events].count("fault_rolled_back") == 1
    assert Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []


def test_gameday_cancelled_while_armed_injects_nothing_and_reveals(isolated, tmp_path, webhook):
    hook_url, bodies = webhook
    proc = start_gameday(tmp_path / "out", hook_url, free_tcp_port(), "--window", "1h", "--seed", "5")
    try:
        armed = wait_for(lambda: events_of(bodies(), "gameday_armed"), 30, what="armed webhook")[0]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 3, out
    record = json.loads((tmp_path / "out" / "gamedays" / f"{armed['gameday_id']}.json").read_text())
    assert verify(record["plan"], armed["sealed_sha256"])
    assert record["plan"]["start_at"] > bodies()[-1]["ts"]  # it really was cancelled before its start
    assert [e["event"] for e in bodies()] == ["gameday_armed", "gameday_aborted"]
    assert "nothing was injected" in bodies()[-1]["reason"]
    assert not [d for d in (tmp_path / "out").iterdir() if d.name != "gamedays"]  # no run folder
    assert not (Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").exists() or \
        Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []


def test_gameday_with_nothing_drawable_is_refused(isolated, tmp_path):
    res = subprocess.run(DRILL + ["gameday", "--pool", str(POOL), "--forbid", "pbx-1", "--forbid",
                                  "pbx-2", "--ack-listen", f"127.0.0.1:{free_tcp_port()}",
                                  "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no scenario may be drawn" in res.stderr and "nothing was run or injected" in res.stderr
    assert "kill-pbx-1.yaml: touches forbidden target(s) pbx-1" in res.stdout
    assert not (tmp_path / "out").exists()


def test_gameday_waits_for_a_late_acknowledgement(isolated, tmp_path, webhook):
    hook_url, bodies = webhook
    ack_port = free_tcp_port()
    proc = start_gameday(tmp_path / "out", hook_url, ack_port, "--window", "9s", "--ack-wait", "60s")
    try:
        started = wait_for(lambda: events_of(bodies(), "gameday_started"), 40, what="started webhook")[0]
        run_dir = Path(started["run_dir"])
        # the drill is over (steady state checked after it) and nobody has acknowledged yet
        wait_for(lambda: any(e["event"] == "steady_state_after"
                             for e in run_events(run_dir)), 60, what="the drill's end")
        assert proc.poll() is None  # still waiting for on-call
        drill_ack(ack_port, "late")
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds.index("steady_state_after") < kinds.index("ack") < kinds.index("run_finished")
    fault_ts = next(e["ts"] for e in events if e["event"] == "fault_injected")
    summary = json.loads((run_dir / "summary.json").read_text())
    ttd = summary["detection"]["time_to_detect"]
    assert ttd == pytest.approx(next(e["ts"] for e in events if e["event"] == "ack") - fault_ts)
    assert ttd > 8 - 2  # later than the rest of the drill after the fault (faults start at 2 s)


def test_gameday_without_acknowledgement_misses_time_to_detect(isolated, tmp_path, webhook):
    hook_url, bodies = webhook
    proc = start_gameday(tmp_path / "out", hook_url, free_tcp_port(), "--window", "9s", "--ack-wait", "1s",
                         "--gate")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out  # a missed target, not an error
    assert "time_to_detect: measured n/a" in out and "no acknowledgement after the fault" in out
    finished = events_of(bodies(), "gameday_finished")[0]
    assert finished["exit_code"] == 1 and finished["time_to_detect"] is None
    assert finished["failed_targets"] == ["time_to_detect"]
