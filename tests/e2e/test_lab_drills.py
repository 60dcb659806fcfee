"""Drills against the container lab (real Kamailio, SIPp PBX nodes), with the truth check:
the harness's answered calls per node must equal Kamailio's own count, exactly."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab import containers
from harness.metrics.records import read_events
from harness.report.calls_csv import read_calls_csv
from tests.conftest import dropped_share, generator_first, last_run, qdisc_drops, \
    rtp_lost_between, wait_for

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]
# one container lab on this machine: its tests run on one xdist worker, in turn
# and alone, after the parallel part: beside three other workers a lab drill's generator
# slipped its RTP schedule (inconclusive, three tries running) in one full run of three
pytestmark = [pytest.mark.xdist_group("lab"), pytest.mark.serial]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, generator_first():
        mp.setenv("HOTLINE_DRILL_STATE", str(tmp_path_factory.mktemp("labstate")))
        try:
            inv = containers.up()
        except Exception as exc:  # never skip: no engine or images is a broken set-up
            containers.down()  # whatever half came up (relays by pid, labelled containers)
            pytest.fail(f"the container lab did not come up: {exc}")
        yield inv
        containers.down()


def run_lab_drill(name: str, out: Path, *extra: str):
    """Run a lab drill as a user does. A run the load generator could not keep to its
    schedule (exit 4) is run again, up to twice, as `--rerun-inconclusive` does, but with
    Kamailio's counters reset before each run: the truth check compares one run with
    Kamailio's count of that same run."""
    for _ in range(3):
        containers.kamailio_reset()
        res = subprocess.run(DRILL + ["run", str(SCENARIOS / f"{name}.yaml"), "-o", str(out), *extra],
                             capture_output=True, text=True, timeout=300)
        if res.returncode != 4:
            break
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    run = last_run(out)
    summary = json.loads((run / "summary.json").read_text())
    assert res.returncode == (0 if summary["passed"] else 1)
    return summary, read_calls_csv(run / "calls.csv")


def test_lab_pbx_kill(lab, tmp_path):
    summary, calls = run_lab_drill("lab-pbx-kill", tmp_path)
    assert containers.truth_check(calls, lab) == []
    f = summary["faults"][0]
    start, end, shifted = f["started_at"], f["undo_started"], f["started_at"] + f["traffic_shift"]
    assert {c.node for c in calls if c.answered and c.started_at < start} == {"pbx-1", "pbx-2"}
    assert all(c.node == "pbx-2" for c in calls if shifted < c.started_at < end and c.answered)
    spanning = [c for c in calls if c.answered_at and c.answered_at < start < c.planned_end]
    assert all(c.outcome == "dropped" for c in spanning if c.node == "pbx-1")
    assert all(c.outcome == "completed" for c in spanning if c.node == "pbx-2")
    assert any(c.node == "pbx-1" for c in calls if c.started_at > end + 2)  # back after rollback
    assert f["failover_time"] is not None and f["failover_time"] < 10  # Kamailio's 1 s keepalives
    assert all(r > 0 for r in [c.rtp_received for c in calls if c.outcome == "completed"])


def test_lab_carrier_cut(lab, tmp_path):
    summary, calls = run_lab_drill("lab-carrier-cut", tmp_path)
    assert containers.truth_check(calls, lab) == []
    f = summary["faults"][0]
    invite_timeout = summary["scenario"]["load"]["invite_timeout"]
    # calls whose whole INVITE timeout lay inside the cut (later ones may connect after it)
    during = [c for c in calls
              if f["started_at"] + 0.5 < c.started_at < f["ended_at"] - invite_timeout]
    assert [c for c in during if c.carrier == "carrier-a"]
    assert all(not c.answered for c in during if c.carrier == "carrier-a")
    assert all(c.outcome == "completed" for c in during if c.carrier != "carrier-a")
    assert any(c.carrier == "carrier-a" and c.answered for c in calls
               if c.started_at > f["ended_at"] + 1)


def test_lab_blackouts_of_known_length(lab, tmp_path):
    """The outage figure against blackouts of known length, in front of real Kamailio."""
    res = subprocess.run(DRILL + ["run", str(Path(__file__).parent / "scenarios" / "lab-blackouts.yaml"),
                                  "-o", str(tmp_path), "--rerun-inconclusive", "2"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    run = last_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    # no Kamailio truth check here: the 200s it counts are lost in the cut carrier path
    for f, length in zip(summary["faults"], (2, 5)):
        window = f["ended_at"] - f["started_at"]
        assert abs(window - length) <= 0.1, f
        assert abs(f["outage"]["length"] - length) <= 0.1, f["outage"]  # max(0.1 s, 2/20 s)
        assert f["failover_time"] >= window - 0.01, f["recovery"]


def test_lab_tcp_trunk_through_toxiproxy(lab, tmp_path):
    trunk = lab.find("carrier-c")
    assert trunk.transport == "tcp" and trunk.toxiproxy is not None  # CI has toxiproxy-server
    summary, calls = run_lab_drill("lab-tcp-trunk-latency", tmp_path)
    assert containers.truth_check(calls, lab) == []
    slow, down = summary["faults"]
    on_c = [c for c in calls if c.carrier == "carrier-c"]
    # calls wholly inside the toxic's window (responses held at its removal are released at once)
    slowed = [c for c in on_c if slow["started_at"] + 0.2 < c.started_at < slow["ended_at"] - 1.0
              and c.answered]
    assert slowed and all(c.pdd >= 0.4 for c in slowed)  # 400 ms on the responses
    cut = [c for c in on_c if down["started_at"] + 0.2 < c.started_at < down["ended_at"]]
    assert cut and all(c.outcome == "failed" and "cannot connect" in c.reason for c in cut)
    assert all(c.outcome == "completed" for c in calls if c.carrier != "carrier-c"
               and down["started_at"] < c.started_at < down["ended_at"])


def test_lab_sipp_engine_pbx_kill(lab, tmp_path):
    summary, calls = run_lab_drill("lab-sipp-engine-pbx-kill", tmp_path)
    assert containers.truth_check(calls, lab) == []  # SIPp's calls, counted by Kamailio too
    run = last_run(tmp_path)
    totals = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()
              if '"sipp_totals"' in x]
    assert sorted(t["carrier"] for t in totals) == ["carrier-a", "carrier-b", "carrier-c"]
    for t in totals:
        assert t["sipp_total_calls"] == len([c for c in calls if c.carrier == t["carrier"]]) > 20
    f = summary["faults"][0]
    shifted = f["started_at"] + f["traffic_shift"]
    assert {c.node for c in calls if c.answered and c.started_at < f["started_at"]} == {"pbx-1", "pbx-2"}
    assert all(c.node == "pbx-2" for c in calls
               if shifted < c.started_at < f["undo_started"] and c.answered)
    assert any(c.answered for c in calls if c.carrier == "carrier-c")  # the TCP trunk carried calls


def test_lab_gameday_with_acknowledgement(lab, tmp_path):
    from tests.conftest import drill_ack, free_tcp_port, run_events, wait_for
    port = free_tcp_port()
    containers.kamailio_reset()
    proc = subprocess.Popen(DRILL + ["gameday", "--pool", str(Path(__file__).parent / "gameday-lab-pool"),
                                     "--ack-listen", f"127.0.0.1:{port}", "-o", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def injected():
            runs = [d for d in tmp_path.iterdir() if d.is_dir() and d.name != "gamedays"]
            return runs and any(e["event"] == "fault_injected"
                                for e in run_events(runs[0]))
        wait_for(injected, 60, what="the game day's fault")
        drill_ack(port, "lab-oncall")
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    run = next(d for d in tmp_path.iterdir() if d.is_dir() and d.name != "gamedays")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"]["name"] == "gd-lab-pause-pbx-2"  # the SBC scenario is never drawn
    assert summary["gameday"]["plan_matches_seal"]
    assert 0 < summary["detection"]["time_to_detect"] < 60
    # no truth check here: a paused PBX answers the INVITEs it held once it resumes, after
    # Kamailio has failed those calls over, so Kamailio counts 200s no caller ever took
    calls = read_calls_csv(run / "calls.csv")
    assert {c.node for c in calls if c.answered} == {"pbx-1", "pbx-2"}


def test_lab_pbx_kill_with_two_locust_workers(lab, tmp_path):
    summary, calls = run_lab_drill("lab-pbx-kill", tmp_path, "--workers", "2")
    assert containers.truth_check(calls, lab) == []  # merged records, counted by Kamailio too
    run = last_run(tmp_path)
    totals = [json.loads(x)["worker_totals"] for i in (1, 2)
              for x in (run / f"worker-{i}.log").read_text().splitlines() if x.startswith('{"worker_totals"')]
    assert len(totals) == 2 and all(t["placed"] > 10 for t in totals)
    assert len(calls) == summary["counts"]["attempts"] == sum(t["placed"] for t in totals)


def test_lab_ci_gate_through_the_pytest_plugin(lab, tmp_path):
    """A release gate against the lab: pytest collects the scenario, one item per SLA target."""
    import xml.etree.ElementTree as ET
    containers.kamailio_reset()
    junit = tmp_path / "junit.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", str(SCENARIOS / "lab-pbx-kill.yaml"),
                          "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
                          "--drill-output", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"answer_rate", "failover_time", "traffic_shift", "dropped_call_rate",
                          "bystander_continuity", "mos_p5", "dead_air", "one_way_audio",
                          "steady_state_after"}, res.stdout[-2000:]
    failed = {n for n, c in cases.items() if c.find("failure") is not None}
    assert res.returncode == (1 if failed else 0), res.stdout[-2000:]
    run = last_run(tmp_path / "runs")
    assert containers.truth_check(read_calls_csv(run / "calls.csv"), lab) == []


def test_lab_abort_rule_rolls_back_both_trunk_cuts(lab, tmp_path):
    import yaml
    from harness.runner.journal import Journal
    from harness.ops.state import state_home
    path = tmp_path / "abort.yaml"
    path.write_text(yaml.safe_dump({
        "name": "lab-abort-on-answer-rate", "target": "lab", "duration": "60s",
        "load": {"calls_per_second": 4, "hold": "1s", "invite_timeout": "2s",
                 "carriers": ["carrier-a", "carrier-b"]},
        "faults": [{"id": "cut-a", "type": "udp.blackhole", "target": "carrier-a", "at": "2s"},
                   {"id": "cut-b", "type": "udp.blackhole", "target": "carrier-b", "at": "2s"}],
        "abort_when": [{"answer_rate_below": "60%", "for": "2s", "window": "4s"}]}))
    res = subprocess.run(DRILL + ["run", str(path), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 3, res.stdout[-2000:]
    run = last_run(tmp_path / "out")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["abort_reason"].startswith("abort rule 1 fired: answer rate below 60%")
    assert summary["run"]["elapsed"] < 30
    rolled = sorted(e["fault_id"] for e in summary["timeline"] if e["event"] == "fault_rolled_back")
    assert rolled == ["cut-a", "cut-b"]
    assert Journal(state_home() / "journal.jsonl").open_faults() == []


def test_lab_capacity_search_of_policed_trunks(lab, tmp_path):
    """Two UDP trunks policed to 24 kbit/s each: once the signalling outgrows them,
    messages are dropped and calls fail; the search stops there and reports the knee."""
    summary, calls = run_lab_drill("lab-capacity-trunks", tmp_path)
    steps = summary["capacity"]["steps"]
    knee = summary["capacity"]["knee"]
    assert steps and steps[-1]["missed"], steps  # the search found a step that breaks
    assert knee is not None and knee < steps[-1]["rate"]
    assert all(not s["missed"] for s in steps if s["rate"] <= knee)
    assert summary["exit_code"] == 0  # the capacity verdict: the first step held
    # no exact truth check: the policer drops some 200s after Kamailio counted them; but every
    # call the harness counts as answered, Kamailio saw answered
    theirs = {n.name: containers.kamailio_answered().get(n.sip, 0) for n in lab.nodes if n.sip}
    ours = {node: sum(c.answered and c.node == node for c in calls) for node in theirs}
    assert all(ours[n] <= theirs[n] for n in theirs) and sum(ours.values()) > 50, (ours, theirs)


def test_lab_nodes_are_supervised_and_survive_freezes(lab, tmp_path):
    """A PBX frozen again and again (drills pause nodes) keeps running; one that crashes is
    started again by the engine, as a supervised production node is; a manual kill (what
    docker.kill does) is left alone."""
    import os
    import signal
    import time

    from harness.ops.docker_api import client
    from harness.sip.probe import wait_until_answers
    from harness.scenario.inventory import split_address

    box = client().containers.get("hd-lab-pbx-1")
    sip = split_address(next(n.sip for n in lab.nodes if n.name == "pbx-1"))
    started = box.attrs["State"]["StartedAt"]
    # one freeze of 30 s (a long pause drill), then ten of 3.5 s: each one a "major" watchdog
    # trip for SIPp, whose default is to quit after ten
    for freeze in [30.0] + [3.5] * 10:
        box.pause()
        time.sleep(freeze)  # the freeze itself: its length is the cause under test
        box.unpause()
        assert wait_until_answers(sip, 10), "the PBX stopped answering after a freeze"
    box.reload()
    assert box.status == "running" and box.attrs["State"]["StartedAt"] == started
    assert box.attrs["RestartCount"] == 0

    os.kill(box.attrs["State"]["Pid"], signal.SIGKILL)  # a crash, seen from the host
    deadline = time.time() + 30
    while time.time() < deadline:
        box.reload()
        if box.attrs["RestartCount"] == 1 and box.status == "running":
            break
        time.sleep(0.2)
    assert box.attrs["RestartCount"] == 1 and box.status == "running"
    assert wait_until_answers(sip, 15), "the restarted PBX does not answer"

    box.kill()  # what docker.kill does: a manual stop, which the policy leaves alone
    box.wait(timeout=10)
    time.sleep(3)  # long enough for the engine's first restart (100 ms back-off) to show
    box.reload()
    assert box.status == "exited" and box.attrs["RestartCount"] == 1
    box.start()
    assert wait_until_answers(sip, 15)


def test_lab_media_goes_through_rtpengine_and_the_carrier(lab):
    """Loss on one carrier trunk reaches exactly the voice of the calls on it; rtpengine
    (under Kamailio's rtpengine module) relays every call's RTP, by its own count."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.faults.base import lookup
    from harness.metrics.voice import call_voice, summary
    from harness.sip.uac import CallOptions, place_call

    by = {e.name: e for e in lab.entry_points}
    lossy, clean = by["carrier-a"], by["carrier-b"]
    managed = containers.rtpengine_managed()
    cls = lookup("udp.loss")
    inj = cls("lab-media-loss", lossy, cls.Params.model_validate({"ratio": 0.1}))
    recipe = inj.recipe()
    inj.inject()
    try:
        jobs = [lossy] * 6 + [clean] * 6
        with ThreadPoolExecutor(len(jobs)) as pool:
            records = list(pool.map(lambda e: place_call(
                e.addr, CallOptions(hold=8.0, local_ip=e.caller_ip), e.name), jobs))
    finally:
        cls.undo(recipe)
    assert all(r.outcome == "completed" for r in records), [r.reason for r in records]
    assert all(r.rtp_echo for r in records)  # SIPp's echo, relayed by rtpengine both ways
    assert containers.rtpengine_managed() - managed >= len(records)
    figures = {name: summary([call_voice(r) for r in records if r.carrier == name])
               for name in (lossy.name, clean.name)}
    hit, fine = figures[lossy.name], figures[clean.name]
    print(f"lab media: {lossy.name} {hit}, {clean.name} {fine}")
    assert abs(hit["loss_down"] - 0.10) < 0.025, hit   # each way, from the round trip's 19 %
    assert fine["loss_down"] < 0.005, fine
    assert hit["mos_p50"] < fine["mos_p5"] - 0.3, (hit, fine)


def test_lab_registrar_holds_what_the_phones_say(lab):
    """Agents' phones against Kamailio's registrar (usrloc, in memory): after they register,
    Kamailio's own table (`kamcmd ul.dump`) holds each address of record with its one
    contact, the phone's own flow; the SBC container restarted forgets them, and the phones' refresh timers bring
    every one back (each refreshed after the restart, and the table agrees again); after the
    un-REGISTERs the table is empty."""
    from harness.load.agents import Phones
    from harness.scenario.model import AgentsSpec

    def table():  # None while Kamailio's control socket is not up yet (a restart)
        try:
            return containers.location_table()
        except RuntimeError:
            return None

    got: list = []
    spec = AgentsSpec(count=10, expires=10, refresh=0.5, retry=1.0, timeout=1.0, spread=2.0)
    phones = Phones.for_drill(spec, lab.registrar, got.append, lambda a: None)
    aors = {p.user for p in phones.phones}
    phones.start(spread=spec.spread)
    try:
        wait_for(lambda: set(table() or ()) == aors, 15, what="all ten in ul.dump")
        assert table() == {p.user: [f"sip:{p.user}@{p.transport.ip}:{p.transport.port}"]
                           for p in phones.phones}  # each phone's own flow, once
        subprocess.run(["docker", "restart", "-t", "0", "hd-lab-sbc"], check=True, timeout=60,
                       capture_output=True)
        restarted = time.time()
        # every phone's refresh (5 s) falls due within one refresh period of the restart
        wait_for(lambda: table() is not None, 10, what="Kamailio answering kamcmd again")
        wait_for(lambda: set(table() or ()) == aors, 5 + 1.0 + 1.0 + 3,
                 what="all ten back in ul.dump")
        back = [a for a in got if a.sent_at >= restarted and a.status == 200 and a.expires]
        assert {a.agent for a in back} == {p.user for p in phones.phones}
    finally:
        phones.stop()
    assert containers.location_table() == {}  # every phone un-REGISTERed
    assert all(a.status == 200 for a in got if a.expires == 0 and a.sent_at >= restarted)


def test_lab_calls_to_agents_go_where_kamailio_looked_them_up(lab, tmp_path):
    """Calls to agents' own numbers through Kamailio (`lookup("location")`), held to its own
    log call by call: every call it delivered reached the phone registered for the number
    dialled and was answered there (the agents' own record names the same agent for the
    same Call-ID); every call it found no phone for is a 404 in the callers' records; its
    `answered` table counts the agents' answers."""
    began = time.time()
    summary, calls = run_lab_drill("lab-agents-take-calls", tmp_path)
    delivered, nobody = {}, set()
    for _, line in containers.kamailio_log(began - 1):
        words = line.split()
        if "delivered:" in words:
            i = words.index("delivered:")
            delivered[words[i + 3]] = (words[i + 1], words[i + 2])
        elif "agent:" in words and "no" in words:
            nobody.add(words[words.index("agent:") + 2])
    placed = {c.call_id: c for c in calls}
    delivered = {cid: d for cid, d in delivered.items() if cid in placed}
    events = [json.loads(x) for x in (last_run(tmp_path) / "events.jsonl").read_text().splitlines()]
    took = {e["call_id"]: e["agent"] for e in events if e["event"] == "agent_answered"}
    print(f"Kamailio delivered {len(delivered)} calls to agents, found no phone for "
          f"{len(nobody & set(placed))}; the agents answered {len(took)}")
    assert len(delivered) >= 15 and nobody & set(placed), (len(delivered), nobody)
    for cid, (agent, contact) in delivered.items():
        assert placed[cid].callee == agent and contact.startswith(f"sip:{agent}@"), (cid, agent)
        assert took.get(cid) == agent and placed[cid].answered and placed[cid].node == agent
    assert set(took) == set(delivered)
    assert {cid for cid in placed if placed[cid].status == 404} == nobody & set(placed)
    assert all(c.answered or c.status == 404 for c in calls)
    answered = [a for cid, a in containers.kamailio_answered_calls().items() if cid in placed]
    assert len(answered) == len(took)
    calls_fig = summary["registration"]["calls"]
    assert calls_fig["mismatched"] == [] and calls_fig["no_agent"] == len(nobody & set(placed))


def test_lab_agents_of_a_killed_drill_are_taken_out_by_drill_recover(lab, tmp_path):
    """A drill SIGKILLed with ten phones registered to Kamailio leaves them in its location
    table (`kamcmd ul.dump`); `drill recover` un-REGISTERs each record (Contact: *) and the
    table is empty again, by Kamailio's own account."""
    import signal

    from harness.runner.engine import new_journal
    (tmp_path / "s.yaml").write_text(
        "name: lab-killed-with-agents\ntarget: lab\nduration: 60s\n"
        "load: {calls_per_second: 0.5, hold: 1s}\nsla: {answer_rate: null}\n"
        "agents: {count: 10, expires: 60s}\n")
    drill = subprocess.Popen(DRILL + ["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(containers.location_table()) == 10, 40, what="ten phones in ul.dump")
        drill.send_signal(signal.SIGKILL)
        drill.wait(10)
        assert len(containers.location_table()) == 10  # left behind by the killed drill
        res = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "10 agents un-REGISTERed" in res.stdout, \
            res.stdout + res.stderr
        assert containers.location_table() == {}
        assert [e for e in new_journal().open_faults() if e["type"] == "agents.registered"] == []
    finally:
        if drill.poll() is None:
            drill.kill()


def test_lab_pbx_starved_of_cpu_answers_late_and_its_cgroup_says_so(lab, tmp_path):
    """docker.limit of pbx-1 to 5 % of a core: its cgroup's own throttling count rises, the
    calls it answered while starved waited longer for their answer than before the fault,
    and after the rollback its cgroup holds no CPU quota again."""
    from harness.faults.docker import cgroup_limits
    from harness.ops.docker_api import client
    cid = client().containers.get("hd-lab-pbx-1").id
    before = cgroup_limits(cid)
    summary, calls = run_lab_drill("lab-pbx-cpu-starved", tmp_path)
    after = cgroup_limits(cid)
    assert before["cpu_quota"] is None and after["cpu_quota"] is None
    assert after["throttled"] > before["throttled"], (before, after)
    f = summary["faults"][0]
    pdd = {}
    for c in calls:
        if c.answered and c.node == "pbx-1" and c.pdd is not None:
            when = "before" if c.started_at < f["started_at"] else \
                "starved" if f["started_at"] + 1 < c.started_at < f["undo_started"] else None
            if when:
                pdd.setdefault(when, []).append(c.pdd)
    med = {k: sorted(v)[len(v) // 2] for k, v in pdd.items()}
    p90 = {k: sorted(v)[int(len(v) * 0.9)] for k, v in pdd.items()}
    print(f"throttled {after['throttled'] - before['throttled']} periods; PDD on pbx-1 p50/p90 "
          f"before {med['before'] * 1000:.1f}/{p90['before'] * 1000:.1f} ms, starved "
          f"{med['starved'] * 1000:.1f}/{p90['starved'] * 1000:.1f} ms")
    assert med["starved"] > med["before"] * 2, med



def test_lab_cpu_hogs_in_a_pbx_container_take_its_share_by_the_cgroups_own_account(lab,
                                                                                 tmp_path):
    """stress.cpu beside pbx-1 in its container's cgroup (a child group of 0.2 core for the
    PBX and two hogs): the group's own account is 0.2 core for as long as it stood, throttled
    in nearly every period; calls pbx-1 answered meanwhile waited longer than before; the
    SIPp PBX is back in its container's own cgroup after."""
    from harness.ops.docker_api import container_pid
    pid = container_pid("hd-lab-pbx-1")
    cgroup = open(f"/proc/{pid}/cgroup").read()
    out = tmp_path / "out"
    summary, calls = run_lab_drill("lab-pbx-cpu-hogs", out)
    f = summary["faults"][0]
    (note,) = [e["note"] for e in read_events(last_run(out) / "events.jsonl")
               if e["event"] == "fault_rolled_back"]
    used, throttled = re.search(r"used ([0-9.]+) CPU s, throttled (\d+) periods", note).groups()
    stood = f["undo_started"] - f["started_at"]
    assert float(used) == pytest.approx(0.2 * stood, abs=0.3), note
    assert 0.8 * stood / 0.1 <= int(throttled) <= stood / 0.1 + 3, note
    assert open(f"/proc/{pid}/cgroup").read() == cgroup
    pdd = {"before": [], "starved": []}
    for c in calls:
        if c.answered and c.node == "pbx-1" and c.pdd is not None:
            if c.started_at < f["started_at"]:
                pdd["before"].append(c.pdd)
            elif f["started_at"] + 1 < c.started_at < f["undo_started"]:
                pdd["starved"].append(c.pdd)
    med = {k: sorted(v)[len(v) // 2] for k, v in pdd.items()}
    print(f"{note}; PDD on pbx-1 p50 before {med['before'] * 1000:.1f} ms, starved "
          f"{med['starved'] * 1000:.1f} ms")
    assert med["starved"] > med["before"] * 2, med


def test_lab_bulk_over_rtpengines_link_spares_the_calls_only_where_the_markings_go_first(
        lab, tmp_path):
    """Bulk of RTP-sized datagrams over rtpengine's link capped at 2 Mbit/s (rtpengine marks its
    RTP EF and its ng answers CS3): with EF and CS3 first, the priority class's queue drops
    nothing (the kernel's count), the bulk's does, and the calls neither lose voice nor fail
    to set up; with one queue for all, the calls up lose at least a share of what the tbf
    dropped, and Kamailio's waits on rtpengine fail new calls too."""
    import yaml
    runs = {}
    for priority in ("ef", "none"):
        s = yaml.safe_load((SCENARIOS / "lab-media-link-saturated.yaml").read_text())
        s["faults"][0]["priority"] = priority
        if priority == "none":
            del s["faults"][0]["first_dscp"]
        path = tmp_path / f"{priority}.yaml"
        path.write_text(yaml.safe_dump(s))
        out = tmp_path / priority
        containers.kamailio_reset()
        res = subprocess.run(DRILL + ["run", str(path), "-o", str(out)], capture_output=True,
                             text=True, timeout=300)
        assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
        run = last_run(out)
        summary = json.loads((run / "summary.json").read_text())
        win = {f["fault_id"]: f for f in summary["faults"]}
        notes = {e["fault_id"]: e["note"] for e in read_events(run / "events.jsonl")
                 if e["event"] == "fault_rolled_back"}
        calls = read_calls_csv(run / "calls.csv")
        bulk = win["bulk"]
        tried = [c for c in calls if bulk["started_at"] + 0.5 < c.started_at < bulk["undo_started"]]
        runs[priority] = (rtp_lost_between(calls, 0, win["cap"]["started_at"]),
                          rtp_lost_between(calls, bulk["started_at"] + 0.5, bulk["undo_started"],
                                           whole=False),
                          dropped_share(notes["cap"]), qdisc_drops(notes["cap"]),
                          sum(c.answered for c in tried) / len(tried), res.returncode)
    print("voice lost before/during bulk, share the cap dropped, calls answered during bulk: " +
          "; ".join(f"{k}: {b:.1%}/{d:.1%}, {q:.1%} {c}, {a:.0%}" for k, (b, d, q, c, a, _)
                    in runs.items()))
    ef, plain = runs["ef"], runs["none"]
    assert ef[0] < 0.01 and plain[0] < 0.01
    # EF and CS3 first: the priority class's queue dropped nothing (the kernel's count), the
    # bulk's did; the calls heard nothing of it and were all set up
    assert ef[3]["pfifo 110:"][1] == 0 and ef[3]["pfifo 120:"][1] > 0 and ef[1] < 0.01, ef
    assert ef[4] == 1 and ef[5] == 0, ef
    assert plain[1] > max(0.05, 0.3 * plain[2]), plain  # one queue: everyone shares the drops
    assert plain[5] == 1, plain


def kernel_oom_kills(cid: str) -> list[float]:
    """When the kernel's OOM killer killed a process in a container's memory cgroup, by its
    own log (seconds since boot, made wall-clock time)."""
    out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30, check=True).stdout
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    return [boot + float(x[1:x.index("]")]) for x in out.splitlines()
            if "oom-kill:" in x and f"oom_memcg=/docker/{cid}" in x]


def test_lab_sbc_limited_to_its_use_is_oom_killed_by_a_surge_and_comes_back(lab, tmp_path):
    """docker.limit of Kamailio's container to what it uses + 1 MiB, then a surge: the calls
    it holds grow its shared memory past the limit and the kernel's OOM killer strikes (the
    kernel's log and the engine's event stream agree, and the drill's rollback note gives the
    same count), never before the surge; Docker's restart policy brings it back each time;
    the drill misses its SLA; after the rollback the SBC runs without the limit."""
    from harness.faults.docker import cgroup_limits, oom_kills
    from harness.ops.docker_api import client, wait_healthy
    from harness.scenario.inventory import split_address
    from harness.sip.probe import wait_until_answers
    api = client().api
    cid = api.inspect_container("hd-lab-sbc")["Id"]
    # a fresh Kamailio: what an earlier drill's calls made it touch stays charged to it
    api.restart(cid, timeout=2)
    wait_healthy(cid)
    (sbc,) = [n for n in lab.nodes if n.name == "sbc"]
    assert wait_until_answers(split_address(sbc.sip), 30)
    kernel_before = len(kernel_oom_kills(cid))
    out = tmp_path / "out"
    summary, calls = run_lab_drill("lab-sbc-out-of-memory", out)
    assert not summary["passed"]
    f = summary["faults"][0]
    ooms = oom_kills(cid, f["started_at"], f["ended_at"] + 1)
    surge = summary["run"]["started_at"] + 8.0  # the scenario's shape: 2 → 20 calls/s at 8 s
    assert ooms and all(t > surge for t in ooms), (ooms, surge)
    kills = kernel_oom_kills(cid)[kernel_before:]
    assert len(kills) == len(ooms), (kills, ooms)
    for kill, died in zip(kills, ooms):  # each death follows a kill of the kernel's
        assert kill - 0.2 < died < kill + 1.0, (kills, ooms)
    (note,) = [e["note"] for e in read_events(last_run(out) / "events.jsonl")
               if e["event"] == "fault_rolled_back"]
    assert f"OOM-killed {len(ooms)} time(s)" in note, note
    state = api.inspect_container(cid)
    assert state["State"]["Status"] == "running" and state["RestartCount"] >= len(ooms)
    limits = cgroup_limits(cid)
    assert limits["memory"] is None or limits["memory"] >= 2 ** 30, limits  # the machine's
    touched = [c for c in calls if not c.answered or c.outcome != "completed"]
    print(f"{len(ooms)} OOM kill(s) at +" + ", +".join(f"{t - summary['run']['started_at']:.1f}"
                                                         for t in ooms) + f" s; {note}")
    assert touched or summary["voice"]["overall"]["dead_air"], "the SBC's deaths left no trace in the calls"


def test_lab_tcp_phones_register_with_kamailio_and_take_a_call_on_their_connection(lab, tmp_path):
    """Phones on TCP registered with Kamailio: its table holds each on `transport=tcp`, and a
    call to an agent's number reaches that phone over its own connection (Kamailio's
    lookup reuses it) and is answered by that agent."""
    from harness.load.agent_desk import AgentDesk
    from harness.load.agents import Phones
    from harness.sip.message import local_ip_for
    from harness.sip.register import PhoneSpec
    from harness.sip.uac import CallOptions, place_call
    ip = local_ip_for(lab.registrar.addr[0])
    desk = AgentDesk(ip, ring=0.1).open()
    spec = PhoneSpec(lab.registrar.addr, lab.registrar.domain, expires=60, timeout=2.0,
                     local_ip=ip, transport="tcp")
    phones = Phones(["agent0001", "agent0002"], spec, desk=desk)
    carrier = lab.entry_points[0]
    try:
        phones.start()
        wait_for(lambda: len(containers.location_table()) == 2, 15, what="two phones in ul.dump")
        assert all(c.endswith(";transport=tcp") for cs in containers.location_table().values()
                   for c in cs)
        rec = place_call(carrier.addr, CallOptions(hold=0.3, rtp=True, callee="agent0002",
                                                   local_ip=carrier.caller_ip))
    finally:
        phones.stop()
    assert rec.answered and rec.node.startswith("sip:agent0002@"), rec
    assert desk.answered[rec.call_id].agent == "agent0002"
    assert containers.location_table() == {}
