"""The harness's outage figures against causes of known size, on the sandbox, through `drill run`.

Each test injects a failure whose length is known (the fault's own window, as
the harness journals it, must itself match the length asked for) and asserts
the figure the harness reports against it, not just the verdict:

- blackouts of 1, 2, 5 and 10 s of the only PBX node (iptables DROP of its SIP
  traffic) and of the only carrier path in use (udp.blackhole), at 20 and 100
  calls/s: outage within max(0.1 s, 2/CPS) of the blackout as it happened (the
  window between iptables' own commits, itself within 0.25 s of the length
  asked); recovery not before the blackout ended;
- an SBC that never marks a dead node down: traffic never shifts, the default
  SLA fails (exit 1) and the review says so;
- a half outage (hash dispatch, half the new calls fail for D s): recovery
  within one recovery window of D.
"""
import pytest

from harness.lab import sandbox
from harness.report.calls_csv import read_calls_csv
from tests.conftest import run_scenario
BLACKOUTS = (1, 2, 5, 10)  # seconds
# between blackouts: after one of 5 s or more, the INVITEs callers kept retransmitting through
# it (timer A: 0.5, 1, 2, 4 s apart) still arrive up to 4 s later, and at 100 calls/s the
# sandbox takes a moment to work through them; 6 s leaves a full 2 s recovery window after
GAP = 6.0
COMMIT_SLACK = 0.25  # s: a fault's window (iptables' own commit times) against the length asked


def blackout_scenario(kind: str, cps: int, pbx_ip: str) -> dict:
    faults, at = [], 3.0
    for length in BLACKOUTS:
        f = {"id": f"blackout-{length}s", "type": kind, "at": f"{at:g}s", "duration": f"{length}s"}
        if kind == "net.cut":  # the only PBX: its SIP traffic dropped both ways, on the host
            f.update(target="pbx-1", protocol="udp", port=5060, peer=pbx_ip)
        else:  # the only carrier path the load uses
            f.update(target="carrier-a")
        faults.append(f)
        at += length + GAP
    return {
        "name": f"blackouts-{kind.replace('.', '-')}-{cps}cps",
        "description": "Blackouts of known length of the only path to the only PBX node.",
        "target": "sandbox",
        "sandbox": {"pbx_nodes": 1, "health_check": False},
        "duration": f"{at:g}s",
        "load": {"calls_per_second": cps, "hold": "1s", "rtp_share": "0%",
                 "carriers": ["carrier-a"]},
        "faults": faults,
        "sla": {"answer_rate": None, "dropped_call_rate": None, "traffic_shift": None},
    }


# the length of each blackout, to a tenth of a second (a fiftieth at 100 calls/s), and calls
# 10 ms apart: run alone, so three other workers' drills cannot move it; and net.cut writes
# iptables rules in the host's own namespace, beside Docker's (the labs' containers) and
# other tests' (full parallel runs saw a 10 s cut let calls through, and a 1 s blackhole's
# last touched call land early enough to read as shifted): with nothing beside, not even a lab
@pytest.mark.serial
@pytest.mark.solo
@pytest.mark.parametrize("cps", [20, 100])
@pytest.mark.parametrize("kind", ["net.cut", "udp.blackhole"])
def test_blackouts_of_known_length(isolated, tmp_path, kind, cps):
    pbx_ip = sandbox.SandboxConfig().block + ".11"
    res, run, summary = run_scenario(tmp_path, blackout_scenario(kind, cps, pbx_ip))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    tolerance = max(0.1, 2 / cps)
    got = {f["fault_id"]: f for f in summary["faults"]}
    assert sorted(got) == sorted(f"blackout-{n}s" for n in BLACKOUTS)
    report = []
    for length in BLACKOUTS:
        f = got[f"blackout-{length}s"]
        window = f["ended_at"] - f["started_at"]
        outage = f["outage"]["length"]
        report.append(f"{length}s: window {window:.3f} outage {outage:.3f} "
                      f"recovery {f['failover_time']}")
        # the harness injected what was asked, to the commit latency of iptables on a busy
        # two-core host (its own commit stamps have shown up to 0.12 s; the scheduler is on time)
        assert abs(window - length) <= COMMIT_SLACK, report
        assert abs(outage - window) <= tolerance, report  # the figure against the cause as it was
        assert f["outage"]["over"] and f["recovered"], report
        assert f["failover_time"] >= window - 0.01, report  # not back before the blackout ended
        assert f["shift"]["never"], report  # the only node: nowhere to shift to
    review = (run / "review.md").read_text()
    assert "Outage (no call answered at all)" in review and "blackout-10s" in review


def test_sbc_that_never_marks_a_node_down_fails_the_default_sla(isolated, tmp_path):
    scenario = {
        "name": "never-marks-down",
        "description": "pbx-1 killed for 15 s behind an SBC whose health check is off.",
        "target": "sandbox",
        "sandbox": {"pbx_nodes": 2, "health_check": False},
        "duration": "24s",
        "load": {"calls_per_second": 10, "hold": "1s", "rtp_share": "0%"},
        "faults": [{"id": "kill-pbx-1", "type": "process.kill", "target": "pbx-1",
                    "at": "4s", "duration": "15s", "signal": "SIGKILL"}],
        # calls in progress on the killed node are lost by design; every other target default
        "sla": {"dropped_call_rate": None},
    }
    res, run, summary = run_scenario(tmp_path, scenario)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    f = summary["faults"][0]
    window = f["ended_at"] - f["started_at"]
    assert f["shift"]["never"] and f["traffic_shift"] is None
    # half the new calls waited the SBC's 1 s failover timer all through the fault
    slow = f["recovery"]["bad_attempts"]
    assert slow >= 0.4 * 10 * (window - 2)
    assert f["failover_time"] >= window - 2.0
    assert f["outage"]["length"] < 0.5  # never silent: the other half was answered at once
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert verdicts["traffic_shift"]["threshold"] == 30.0  # on by default
    assert not verdicts["traffic_shift"]["passed"]
    assert verdicts["answer_rate"]["passed"]  # every call was answered in the end
    assert "traffic never shifted" in (run / "review.md").read_text()
    assert "traffic never shifted" in (run / "report.html").read_text()
    assert "never shifted" in res.stdout


def test_half_outage_recovery_matches_its_length(isolated, tmp_path):
    duration = 10.0
    scenario = {
        "name": "half-outage",
        "description": "Hash dispatch; pbx-1 killed for 10 s and never marked down: half the "
                       "new calls fail, interleaved with answered ones.",
        "target": "sandbox",
        # no health check, and the SBC waits longer than the caller: a call sent to the
        # dead node is not retried elsewhere, it fails
        "sandbox": {"pbx_nodes": 2, "health_check": False, "dispatch": "hash",
                    "failover_timer": "30s"},
        "duration": "22s",
        "load": {"calls_per_second": 20, "hold": "1s", "rtp_share": "0%",
                 "invite_timeout": "2s"},
        "faults": [{"id": "half", "type": "process.kill", "target": "pbx-1", "at": "4s",
                    "duration": f"{duration:g}s", "signal": "SIGKILL"}],
        "sla": {"dropped_call_rate": None, "answer_rate": None, "traffic_shift": None},
    }
    res, run, summary = run_scenario(tmp_path, scenario)
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    f = summary["faults"][0]
    window = f["ended_at"] - f["started_at"]
    # interleaved: during the fault about half the new calls failed, the rest were answered
    calls = [c for c in read_calls_csv(run / "calls.csv")
             if f["started_at"] + 1 <= c.started_at < f["ended_at"] - 1]
    failed = sum(not c.answered for c in calls) / len(calls)
    assert 0.3 <= failed <= 0.7, failed
    assert all(c.node == "pbx-2" for c in calls if c.answered)
    assert abs(f["failover_time"] - window) <= f["recovery"]["window"], f["recovery"]
    assert f["outage"]["length"] < 1.0  # never a long silence: answers kept coming
