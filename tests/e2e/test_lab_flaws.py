"""Drills against the container lab with known flaws, each judged against the real component's
own account: Kamailio's log of every call it retried or failed, its record of which PBX
answered each call, SIPp's own call counts (through the truth check).

- pbx-2's media path cut at rtpengine while its signalling lives (`lab-pbx-media-dead`, a
  fault on a correct lab): dead air fails and names pbx-2; the silent calls are exactly the calls
  Kamailio says pbx-2 answered while the cut held.
- `--flaw health-check-flaps`: keepalives count their own timeout as a reply, so the killed
  node is marked up again after every failover; traffic never shifts (exit 1), and Kamailio's
  own log shows it retrying calls first sent to the dead node up to the fault's last seconds.
- `--flaw health-check-flaps --flaw no-failover`: the dead node is never marked down and its
  calls are not retried: a half outage for the whole fault; the failed calls are exactly
  the ones Kamailio logged as failed.
"""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab import containers
from harness.metrics.voice import MEDIA_GAP, silences
from harness.report.calls_csv import read_calls_csv
from harness.scenario.load import read_inventory
from tests.conftest import generator_first, last_run

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NODE_LOSS = Path(__file__).parent / "scenarios" / "lab-flaw-node-loss.yaml"
DRILL = [sys.executable, "-m", "harness.cli"]
# one container lab on this machine: its tests run on one xdist worker, in turn
# and alone, after the parallel part: beside three other workers a lab drill's generator
# slipped its RTP schedule (inconclusive, three tries running) in one full run of three
pytestmark = [pytest.mark.xdist_group("lab"), pytest.mark.serial]
LOGGED = re.compile(r"(failover|failed): sip:(\S+) did not answer (\S+) \((\d+)\)")
ANSWERED = re.compile(r"answered: (\S+) (\S+)")


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, generator_first():
        mp.setenv("HOTLINE_DRILL_STATE", str(tmp_path_factory.mktemp("flawstate")))
        yield
        containers.down()


def lab_up(*flaws: str):
    """`drill lab up --docker [--flaw NAME]...`, as a user brings the lab up; its inventory."""
    argv = DRILL + ["lab", "up", "--docker"] + [a for f in flaws for a in ("--flaw", f)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:  # never skip: no engine or images is a broken set-up
        containers.down()
        pytest.fail(f"the container lab did not come up: {res.stdout[-2000:]}{res.stderr[-2000:]}")
    assert sorted(containers.flaws_running()) == sorted(flaws)
    return read_inventory(containers.inventory_path())


def run(scenario: Path, out: Path) -> tuple[int, dict, list, list]:
    """The drill, run as a user does (a run the generator could not keep to its schedule is
    run again, Kamailio's counters reset before each), with Kamailio's log of that run:
    (exit code, summary, calls, [(time, failover|failed|answered, PBX, Call-ID)])."""
    for _ in range(3):
        containers.kamailio_reset()
        began = time.time()
        res = subprocess.run(DRILL + ["run", str(scenario), "-o", str(out)], capture_output=True,
                             text=True, timeout=300)
        if res.returncode != 4:
            break
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    folder = last_run(out)
    summary = json.loads((folder / "summary.json").read_text())
    logged = []
    for at, line in containers.kamailio_log(began - 1):
        if m := LOGGED.search(line):
            logged.append((at, *m.groups()[:3]))
        elif m := ANSWERED.search(line):
            logged.append((at, "answered", *m.groups()))
    return res.returncode, summary, read_calls_csv(folder / "calls.csv"), logged


def truth_check_beside_late_answers(calls, inv, logged) -> set[str]:
    """The truth check, with the one difference Kamailio's own log explains: a node killed
    and started again answers an INVITE sent to it while it was dead (held in the kernel
    until its address answered again) after the caller already had its final response
    (a failure, or the 200 of the node the call was retried on); Kamailio relays that
    late 200 and keeps the late node in its record (the last 200 it relayed). Such a call
    is either one the caller saw fail with a final response (Kamailio's tm sends no failure
    upstream once it relayed a 2xx, so any 200 it logged for that call came after), or one
    for which Kamailio logged two 200s: the caller took the first one relayed, so the
    harness's node must be the first one's (asserted here, call by call), and the record's
    is the second's. A late 200 came as close as 0.06 s after the 408 in CI, and a second
    200 0.5 s or less after the first: no time threshold tells them apart, the log's order
    does. Returns those calls left out of both counts; the test asserts where they lie."""
    node = {n.sip: n.name for n in inv.nodes if n.sip}
    refused = {c.call_id for c in calls if not c.answered and c.status >= 300}
    taken = {c.call_id: c.node for c in calls if c.answered}
    answers: dict[str, list[str]] = {}
    for at, kind, pbx, cid in sorted(logged):
        if kind == "answered":
            answers.setdefault(cid, []).append(node.get(pbx, pbx))
    late = {cid for cid in answers if cid in refused}
    for cid, nodes in answers.items():
        if cid in taken and len(nodes) > 1:
            assert nodes[0] == taken[cid], (cid, nodes, taken[cid])
            late.add(cid)
    # left out of both counts (the truth check counts only the calls it is given)
    mismatches = containers.truth_check([c for c in calls if c.call_id not in late], inv)
    assert mismatches == [], mismatches
    return late


def node_loss_behind(out: Path, *flaws: str):
    """The node-loss drill behind the lab with these flaws, its truth check done (late
    answers from the restarted node come only in the fault's last seconds):
    (inventory, exit code, summary, calls, Kamailio's log)."""
    inv = lab_up(*flaws)
    code, summary, calls, logged = run(NODE_LOSS, out)
    (f,) = summary["faults"]
    late = truth_check_beside_late_answers(calls, inv, logged)
    assert all(f["undo_started"] - 3.0 < c.started_at < f["ended_at"]
               for c in calls if c.call_id in late)
    return inv, code, summary, calls, logged


def test_a_pbx_that_answers_in_silence_fails_dead_air_naming_it(lab_state, tmp_path):
    inv = lab_up()
    code, summary, calls, logged = run(SCENARIOS / "lab-pbx-media-dead.yaml", tmp_path)
    # who answered: Kamailio's count, exactly (no node restarts here, so no late answer)
    assert truth_check_beside_late_answers(calls, inv, logged) == set()
    assert code == 1
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    dead = verdicts["dead_air"]
    assert not dead["passed"] and "pbx-2:" in dead["detail"] and "pbx-1:" not in dead["detail"]
    (f,) = summary["faults"]
    answered_by = containers.kamailio_answered_calls()
    pbx = {n.sip: n.name for n in inv.nodes if n.sip}
    gap = MEDIA_GAP  # the scenario keeps the default

    def silent_for(c) -> float:  # how long the cut held while the call was up
        return min(c.planned_end, f["undo_started"]) - max(c.answered_at, f["started_at"])

    media = [c for c in calls if c.outcome == "completed" and c.media]
    by_kamailio = {c.call_id: pbx[answered_by[c.call_id]] for c in media}
    assert {by_kamailio[c.call_id] for c in media} == {"pbx-1", "pbx-2"}
    for c in media:
        is_dead = silences(c, gap)[0]
        if by_kamailio[c.call_id] == "pbx-1" or silent_for(c) < gap - 0.1:
            assert not is_dead, (c.call_id, by_kamailio[c.call_id], silent_for(c))
        elif silent_for(c) > gap + 0.1:  # pbx-2 answered it, and the cut outlasted the gap
            assert is_dead, (c.call_id, silent_for(c))
    wholly = [c for c in media if by_kamailio[c.call_id] == "pbx-2"
              and c.answered_at > f["started_at"] and c.planned_end < f["undo_started"]]
    assert len(wholly) >= 5 and all(c.rtp_received == 0 for c in wholly)


def test_a_health_check_that_flaps_never_shifts_traffic(lab_state, tmp_path):
    inv, code, summary, calls, logged = node_loss_behind(tmp_path, "health-check-flaps")
    (f,) = summary["faults"]
    start, end = f["started_at"], f["undo_started"]
    dead = inv.find("pbx-1").sip
    in_fault = {c.call_id: c for c in calls if start <= c.started_at < end}
    retried = [(at, cid) for at, kind, pbx, cid in logged
               if kind == "failover" and pbx == dead and cid in in_fault]
    # Kamailio's own account: it kept sending new calls to the dead node, to the very end
    assert len(retried) >= 5, logged
    assert retried[-1][0] > end - 4.0, (retried[-1], end)
    # every call Kamailio retried is one the fault touched: it failed (this SBC's next node
    # was not always there: "503 No PBX left"), or its set-up took far longer than the
    # pre-fault calls' (the 1 s failover timer)
    limit = f["shift"]["slow_limit"]
    assert all(not in_fault[cid].answered or in_fault[cid].pdd > limit for _, cid in retried)
    assert any(in_fault[cid].answered for _, cid in retried)  # some did reach pbx-2, late
    assert f["shift"]["never"] and f["traffic_shift"] is None, f["shift"]
    assert f["shift"]["touched"] >= len(retried) - f["shift"]["strays"]
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert not verdicts["traffic_shift"]["passed"] and "never" in verdicts["traffic_shift"]["detail"]
    assert code == 1


def test_no_failover_behind_a_check_that_never_marks_down_is_a_half_outage(lab_state, tmp_path):
    inv, code, summary, calls, logged = node_loss_behind(tmp_path, "health-check-flaps",
                                                         "no-failover")
    (f,) = summary["faults"]
    start, end = f["started_at"], f["undo_started"]
    dead = inv.find("pbx-1").sip
    timeout = summary["scenario"]["load"]["invite_timeout"]
    # calls whose INVITE was wholly inside the fault (a later one may reach pbx-1 restarted)
    inside = {c.call_id: c for c in calls if start + 0.5 < c.started_at < end - timeout}
    failed = {cid for cid, c in inside.items() if not c.answered}
    by_kamailio = {cid for _, kind, pbx, cid in logged if kind == "failed" and pbx == dead
                   and cid in inside}
    assert failed == by_kamailio and len(failed) > 50, (len(failed), len(by_kamailio))
    assert 0.4 <= len(failed) / len(inside) <= 0.6  # round robin over two nodes, one dead
    assert not [c for c in inside.values() if c.answered and c.node == "pbx-1"]
    assert f["outage"]["length"] < 1.0  # pbx-2 answered all along: half an outage, not one
    assert f["shift"]["never"], f["shift"]
    # good calls were back at their pre-fault share only once pbx-1 was started again
    assert f["failover_time"] is None or f["failover_time"] > (end - start) - 1.0, f["recovery"]
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert not verdicts["answer_rate"]["passed"] and not verdicts["traffic_shift"]["passed"]
    assert code == 1
