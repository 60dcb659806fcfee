"""Whole drills through the `drill` command against the sandbox, as a user runs them."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.ops.procs import proc_state, read_pid
from harness.faults.base import relay_command
from harness.lab import sandbox
from harness.metrics.evaluate import evaluate
from harness.report.calls_csv import read_calls_csv
from harness.report.render import fault_windows
from harness.metrics.records import read_events
from harness.runner.journal import Journal
from tests.conftest import last_run, need, wait_for

HERE = Path(__file__).parent / "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]


def drill(*args, **kw):
    return subprocess.run(DRILL + list(args), capture_output=True, text=True, timeout=180, **kw)


def test_node_loss_drill_end_to_end(isolated, tmp_path):
    res = drill("run", str(HERE / "short-node-loss.yaml"), "-o", str(tmp_path / "out"))
    assert res.returncode in (0, 1), res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    for name in ("events.jsonl", "calls.csv", "summary.json", "junit.xml", "review.md",
                 "report.html", "metrics.prom"):
        assert (run / name).stat().st_size > 0, name
    summary = json.loads((run / "summary.json").read_text())
    calls = read_calls_csv(run / "calls.csv")
    fault = summary["faults"][0]
    start, end = fault["started_at"], fault["undo_started"]  # then the restart brings pbx-1 back

    # load really ran: about 5 calls/s for 20 s, through all three carriers
    assert len(calls) >= 80
    assert {c.carrier for c in calls} == {"carrier-a", "carrier-b", "carrier-c"}
    # both nodes took calls before the kill
    before = {c.node for c in calls if c.answered and c.started_at < start}
    assert before == {"pbx-1", "pbx-2"}
    # the killed node's calls failed or moved: once the shift was over, nothing landed on pbx-1
    shifted = start + fault["traffic_shift"]
    assert not [c for c in calls if start <= c.started_at < end and c.node == "pbx-1"]
    assert all(c.node == "pbx-2" for c in calls if shifted < c.started_at < end and c.answered)
    # calls in progress on pbx-1 at the kill were dropped; those on pbx-2 survived
    spanning = [c for c in calls if c.answered_at and c.answered_at < start < c.planned_end]
    assert spanning and all(c.outcome == "dropped" for c in spanning if c.node == "pbx-1")
    assert all(c.outcome == "completed" for c in spanning if c.node == "pbx-2")
    # after the rollback pbx-1 took calls again
    assert any(c.node == "pbx-1" for c in calls if c.started_at > end + 2)

    # verdicts and files agree with the records
    windows = fault_windows(read_events(run / "events.jsonl"))
    again = evaluate(calls, windows, {"answer_rate": 0.9, "failover_time": 5.0,
                                      "traffic_shift": 30.0, "dropped_call_rate": 0.4, "bystander_continuity": 0.95,
                                      # the voice, judged by default (the calls carry media)
                                      "mos_p5": 3.1, "dead_air": 0.01, "one_way_audio": 0.01,
                                      "steady_state_after": True},
                     max_gap=1.0, alarm_window=10, run_start=summary["run"]["started_at"],
                     run_end=summary["run"]["ended_at"], steady_state_after=True)
    assert again["verdicts"] == summary["verdicts"]
    assert summary["counts"]["attempts"] == len(calls)
    assert res.returncode == (0 if summary["passed"] else 1)
    junit = (run / "junit.xml").read_text()
    assert junit.count("<testcase") == len(summary["verdicts"])
    assert junit.count("<failure") == sum(not v["passed"] for v in summary["verdicts"])
    review = (run / "review.md").read_text()
    assert "kill-pbx-1" in review and "Failover time" in review and "## Root cause" in review
    with open(run / "calls.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(calls)
    # the sandbox the drill started is gone again; the journal holds nothing open
    assert all(pid is None for pid in sandbox.status().values())
    assert Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []

    # the HTML report, looked at in headless Chromium: chart drawn, tables filled
    dom, png = render_in_chromium(run / "report.html", tmp_path)
    assert dom.count('class="main-svg"') >= 4  # plotly drew the timeline and three distributions
    assert "kill-pbx-1" in dom  # the fault window's label on the timeline
    assert dom.count("<tr>") >= len(summary["verdicts"]) + 3
    assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the run is in the history
    listed = [json.loads(line) for line in
              drill("history", "--json", "--reports", str(tmp_path / "out")).stdout.splitlines()]
    assert [(e["scenario"], e["run_dir"], e["passed"]) for e in listed][-1] == \
        ("short-node-loss", str(run), summary["passed"])
    assert all(e["exit_code"] == 4 for e in listed[:-1])  # any before: inconclusive, run again

    # `drill report` rebuilds the same verdicts from the saved records
    (run / "summary.json").unlink()
    rebuilt = drill("report", str(run))
    assert rebuilt.returncode == res.returncode
    assert json.loads((run / "summary.json").read_text())["verdicts"] == summary["verdicts"]

    # the resilience score as the run left it: this run alone counts (node loss, monthly
    # switch-over), pass 100 or fail 50, the five other categories never drilled (0); the
    # rebuild gives the same figure, `drill score` today too, and report.html shows it
    res_ = summary["resilience"]
    points = 100.0 if summary["passed"] else 50.0
    assert res_["target"] == "sandbox" and res_["categories"]["node loss"] == \
        {"score": points, "scenarios": 1}
    assert res_["score"] == round(points / 6, 1) and res_["trend"][-1][1] == res_["score"]
    assert json.loads((run / "summary.json").read_text())["resilience"] == res_
    today = json.loads(drill("score", "--json", "--reports", str(tmp_path / "out")).stdout)
    assert today["score"] == res_["score"]
    assert f"Resilience score: sandbox {res_['score']:.0f} / 100" in (run / "report.html").read_text()


def render_in_chromium(html: Path, tmp: Path) -> tuple[str, Path]:
    """The DOM after scripts ran, and a screenshot, from Debian's headless Chromium."""
    chromium = need("chromium")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    png = tmp / "report.png"
    subprocess.run(flags + ["--window-size=1200,1900", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120)
    return dom, png


def _start_long_drill(out: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(DRILL + ["run", str(HERE / "long-pause.yaml"), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events = wait_for(lambda: next(out.glob("*/events.jsonl"), None), 30, what="events.jsonl")
    wait_for(lambda: sum('"fault_injected"' in line for line in events.read_text().splitlines()) == 3,
             30, what="all three faults injected")
    return proc, events


def _journal(env) -> Journal:
    return Journal(Path(env["HOTLINE_DRILL_STATE"]) / "journal.jsonl")


@pytest.mark.serial
def test_sigterm_rolls_back_and_exits_3(isolated, tmp_path):
    proc, events = _start_long_drill(tmp_path / "out")
    inv = sandbox.inventory()
    paused = read_pid(inv.find("pbx-2").process.pidfile)
    assert proc_state(paused)[0] == "T"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    evs = read_events(events)
    rolled = [e for e in evs if e["event"] == "fault_rolled_back"]
    aborted = next(e for e in evs if e["event"] == "run_aborted")
    assert {e["fault_id"] for e in rolled} == {"pause-pbx-2", "kill-pbx-1", "loss-carrier-a"}
    # every fault rolled back within 1 s of the signal's arrival
    assert max(e["ts"] for e in rolled) - aborted["requested_at"] < 1.0
    assert aborted["rolled_back_in"] < 1.0
    assert "SIGTERM" in aborted["reason"]
    assert _journal(isolated).open_faults() == []
    summary = json.loads((events.parent / "summary.json").read_text())
    assert summary["run"]["aborted"] and summary["exit_code"] == 3


@pytest.mark.serial
def test_sigterm_while_the_sandbox_starts_stops_before_anything_is_injected(isolated, tmp_path):
    proc = subprocess.Popen(DRILL + ["run", str(HERE / "long-pause.yaml"), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()  # the harness says it is starting the sandbox: handlers are in
    assert "starting the sandbox hotline" in first, first
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    took = time.monotonic() - signalled
    assert proc.returncode == 3, first + out
    assert "nothing was injected" in out
    assert took < 1.0  # the start's wait for every part to answer is cut short
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*/events.jsonl"))
    assert _journal(isolated).entries() == []
    assert all(pid is None for pid in sandbox.status().values())  # the drill's sandbox is down


@pytest.mark.serial
def test_sigterm_during_the_steady_state_check_before_ends_it_within_a_second(isolated, tmp_path):
    """The check before places a test call with a second of RTP through each carrier: a
    signal while it holds ends the hold (the call still gets its BYE) and the drill."""
    from harness.sip.probe import options_ping
    proc = subprocess.Popen(DRILL + ["run", str(HERE / "long-pause.yaml"), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    entries = [e.addr for e in sandbox.inventory().entry_points]
    # every carrier answers: the sandbox is up, and the drill's check before is under way
    wait_for(lambda: all(options_ping(a, timeout=0.2) == 200 for a in entries), 30,
             every=0.01, what="the sandbox up")
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    took = time.monotonic() - signalled
    assert proc.returncode == 3 and "nothing was injected" in out, out
    assert took < 1.0, out
    assert _journal(isolated).entries() == []
    assert all(pid is None for pid in sandbox.status().values())


def test_sigkill_then_recover_leaves_nothing_behind(isolated, tmp_path):
    proc, _ = _start_long_drill(tmp_path / "out")
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate(timeout=10)
    inv = sandbox.inventory()
    pbx1, pbx2 = (read_pid(inv.find(n).process.pidfile) for n in ("pbx-1", "pbx-2"))
    assert proc_state(pbx1) is None and proc_state(pbx2)[0] == "T"  # faults left in place
    carrier = inv.find("carrier-a")
    assert relay_command(carrier.relay, {"op": "list"}, carrier.relay_token_file)["toxics"]  # the udp toxic too
    assert len(_journal(isolated).open_faults()) == 3

    parts = {n: read_pid(p.process.pidfile) for n, p in
             [(x.name, x) for x in [*inv.nodes, *inv.entry_points]]}
    res = drill("recover", env={**os.environ})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "kill-pbx-1" in res.stdout and "pause-pbx-2" in res.stdout and "loss-carrier-a" in res.stdout
    assert "SIGCONT" in res.stdout and "restarted as pid" in res.stdout and "removed" in res.stdout
    assert _journal(isolated).open_faults() == []
    # the sandbox the killed drill had started for itself is stopped too: nothing left behind
    assert "started by drill pid" in res.stdout, res.stdout
    assert all(pid is None for pid in sandbox.status().values())
    assert all(proc_state(pid) is None for pid in parts.values() if pid)
    second = drill("recover")
    assert second.returncode == 0 and "nothing to recover" in second.stdout


def test_a_fault_that_cannot_be_injected_aborts_and_rolls_back(isolated, tmp_path):
    res = drill("run", str(HERE / "failing-fault.yaml"), "-o", str(tmp_path / "out"))
    assert res.returncode == 3, res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["aborted"]
    assert "inject of broken failed" in summary["run"]["abort_reason"]
    assert "exited 1" in summary["run"]["abort_reason"]
    evs = read_events(run / "events.jsonl")
    assert [e["fault_id"] for e in evs if e["event"] == "fault_rolled_back"] == ["pause-pbx-2"]
    assert '<error message="aborted' in (run / "junit.xml").read_text()
    assert _journal(isolated).open_faults() == []


def test_load_shape_spike(isolated, tmp_path):
    res = drill("run", str(HERE / "spike.yaml"), "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stdout[-2000:]
    run = last_run(tmp_path / "out")
    summary = json.loads((run / "summary.json").read_text())
    t0 = summary["run"]["started_at"]
    calls = read_calls_csv(run / "calls.csv")

    def rate(a, b):
        return sum(a <= c.started_at - t0 < b for c in calls) / (b - a)

    # six-second windows: base, the spike, after it
    base, peak, after = rate(0, 6), rate(6, 12), rate(13, 19)
    assert 1.5 <= base <= 2.8 and 1.5 <= after <= 2.8, (base, after)
    assert 6.0 <= peak <= 10.0, peak  # the spike really happened, ×4
    changes = [e for e in summary["timeline"] if e["event"] == "load_changed"]
    assert [c["calls_per_second"] for c in changes] == [8, 2]
    assert all(c.outcome == "completed" for c in calls)  # no call cut short by the step down


def test_capacity_search_finds_the_knee_of_a_limited_hotline(isolated, tmp_path):
    env = {**os.environ, "HOTLINE_DRILL_SANDBOX_CHANNELS": "4"}
    res = drill("run", str(HERE / "capacity-search.yaml"), "-o", str(tmp_path / "out"), env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    summary = json.loads((run / "summary.json").read_text())
    steps = summary["capacity"]["steps"]
    # 8 channels held ~1.1 s each carry ~7 calls/s: 3 and 6 fit, 9 does not
    assert [(s["rate"], bool(s["missed"])) for s in steps] == [(3, False), (6, False), (9, True)]
    assert summary["capacity"]["knee"] == 6
    assert "knee 6 calls/s" in summary["run"]["stop_reason"]  # stopped early, before 12 calls/s
    calls = read_calls_csv(run / "calls.csv")
    step9 = [c for c in calls if steps[2]["started"] <= c.started_at < steps[2]["ended"]]
    assert len(step9) == steps[2]["attempts"] and sum(c.answered for c in step9) / len(step9) < 0.9
    assert all(c.reason and "503" in c.reason for c in step9 if not c.answered)
    # the PBX nodes' own counts agree that they turned calls away
    stats = [json.loads((sandbox.SandboxConfig().folder / f"pbx-{i}.stats.json").read_text())
             for i in (1, 2)]
    assert sum(s["rejected"] for s in stats) > 0
    verdict = next(v for v in summary["verdicts"] if v["target"] == "capacity")
    assert verdict["measured"] == 6 and verdict["passed"]
    assert "answer_rate" not in {v["target"] for v in summary["verdicts"]}
