"""Journeys through the sandbox ACD, judged call by call against the ACD's own log: who got
an agent after how long, who gave up after how long."""
import json
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from harness.load.journey import Journey, run_journey
from harness.metrics.journey import journey_figures, wait_of
from harness.scenario.model import Distribution
from harness.sip.probe import options_ping
from harness.sip.uac import CallOptions, start_call
from tests.conftest import free_udp_port, wait_for

CALLS, AGENTS, TALK, PATIENCE = 10, 2, 1.5, 1.0


def start_acd(tmp_path, *args):
    port, log = free_udp_port(), tmp_path / "acd.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.acd", "--name", "acd-1",
                             "--listen", f"127.0.0.1:{port}", "--log", str(log), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: options_ping(("127.0.0.1", port), timeout=0.5) == 200, 10, what="the ACD")
    return proc, port, log


@pytest.fixture
def acd(tmp_path):
    proc, port, log = start_acd(tmp_path, "--group", f"sales={AGENTS}", "--group", "care=1",
                                "--menu", "1=sales", "--menu", "2=care")
    try:
        yield port, log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def at_acd(tmp_path, acd_args: list[str], journeys: list[Journey], gap: float,
           **options) -> tuple[list, dict]:
    """Callers on these journeys, `gap` s apart, at an ACD started with `acd_args`; their
    records and the ACD's log."""
    proc, port, log = start_acd(tmp_path, *acd_args)
    try:
        records = callers(port, journeys, gap, **options)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return records, _acd_log(log)


def _acd_log(log) -> dict:
    return {(e["event"], e["call_id"]): e
            for e in (json.loads(line) for line in log.read_text().splitlines())}


def _journey_call(port: int, journey: Journey, out: list, seed: int, **options) -> None:
    rec, held = start_call(("127.0.0.1", port), CallOptions(hold=journey.longest, invite_timeout=4,
                                                            bye_timeout=2, **options))
    out.append(run_journey(held, journey, random.Random(seed)) if held else rec)


def callers(port: int, journeys: list[Journey], gap: float, **options) -> list:
    """One caller per journey, `gap` s apart, each on its own thread; their records."""
    records: list = []
    threads = [threading.Thread(target=_journey_call, args=(port, j, records, i), kwargs=options)
               for i, j in enumerate(journeys)]
    for t in threads:
        t.start()
        time.sleep(gap)
    for t in threads:
        t.join(60)
    return records


def test_waits_and_abandons_match_the_acd_log_call_by_call(acd):
    port, log = acd
    journey = Journey(keys="1", talk=Distribution(fixed=TALK).sampler(), longest=30.0)
    # every second caller gives up after 1 s in the queue (the others' patience is endless)
    records = callers(port, [replace(journey, patience=Distribution(fixed=PATIENCE).sampler())
                             if i % 2 else journey for i in range(CALLS)], 0.1)
    assert len(records) == CALLS and all(r.answered for r in records), [r.reason for r in records]
    acd_log = _acd_log(log)
    answered = [r for r in records if r.agent_at is not None]
    gave_up = [r for r in records if r.abandoned_at is not None]
    # the ACD's own account, call by call: queued to "sales" by the key, served or abandoned
    assert all(("queued", r.call_id) in acd_log and acd_log[("queued", r.call_id)]["group"] == "sales"
               for r in records)
    assert {r.call_id for r in answered} == {c for e, c in acd_log if e == "answered"}
    assert {r.call_id for r in gave_up} == {c for e, c in acd_log if e == "abandoned"}
    assert gave_up and len(answered) >= AGENTS
    for r in answered:
        assert abs(wait_of(r) - acd_log[("answered", r.call_id)]["wait"]) <= 0.06, r.call_id
    for r in gave_up:
        assert abs(wait_of(r) - acd_log[("abandoned", r.call_id)]["wait"]) <= 0.06, r.call_id
        assert wait_of(r) == pytest.approx(PATIENCE, abs=0.06)
    # never more callers with an agent than agents: the first two at once, the rest waited
    assert sorted(wait_of(r) for r in answered)[:AGENTS][-1] < 0.1
    f = journey_figures(records, short_abandon=0.5)
    assert (f["answered"], f["abandoned"]) == (len(answered), len(gave_up))
    assert f["ivr_failure"] == 0 and all(r.prompt_at is not None for r in records)


GROUPS = {"1": "sales", "2": "care"}  # the key after the agent marker: the group's place
OVERFLOW_AFTER = 1.0


def test_overflow_and_a_full_queue_as_the_callers_hear_them_and_the_acd_logs_them(tmp_path):
    """sales (1 agent) overflows to care (1 agent) after 1 s; a queue holds 2 callers, the
    next hears the failure announcement (B). Six callers 0.1 s apart, talking 3 s: the first
    gets sales, the next two wait, overflow after 1 s and one goes to care; the others are
    turned away while two wait."""
    journey = Journey(keys="1", talk=Distribution(fixed=3.0).sampler(), longest=30.0,
                      agent_groups=GROUPS, turn_away={"B": "announcement", "C": "callback"})
    records, acd_log = at_acd(tmp_path, ["--group", "sales=1", "--group", "care=1",
                                         "--overflow", f"sales={OVERFLOW_AFTER:g}:care",
                                         "--queue-limit", "2", "--when-full", "announcement",
                                         "--menu", "1=sales"], [journey] * 6, 0.1)
    assert len(records) == 6 and all(r.answered for r in records), [r.reason for r in records]
    for r in records:  # each caller's account is the ACD's, call by call
        if ("answered", r.call_id) in acd_log:
            e = acd_log[("answered", r.call_id)]
            assert r.answered_by == e["group"] and abs(wait_of(r) - e["wait"]) <= 0.06, r.call_id
            assert e["overflowed"] == (e["group"] == "care")  # care took only overflowed callers
        elif ("turned away", r.call_id) in acd_log:
            assert r.turned_away == "announcement" and r.agent_at is None, r.call_id
        else:
            pytest.fail(f"{r.call_id}: neither answered nor turned away in the ACD log")
    overflowed = [c for e, c in acd_log if e == "overflowed"]
    assert overflowed and all(acd_log[("overflowed", c)]["wait"] == pytest.approx(OVERFLOW_AFTER, abs=0.05)
                              for c in overflowed)
    by = sorted(r.answered_by for r in records if r.agent_at is not None)
    assert by.count("sales") >= 1 and by.count("care") >= 1
    turned = [r for r in records if r.turned_away]
    assert turned  # the queue of two was full when the later callers came
    f = journey_figures(records)
    assert f["turned_away"] == len(turned)
    assert f["destinations"]["announcement"] == pytest.approx(len(turned) / 6)
    assert f["destinations"]["agents: care"] == pytest.approx(by.count("care") / 6)


def test_markers_sent_as_tones_in_the_audio_read_as_the_events_do(tmp_path):
    """The ACD's IVR and agents mark with DTMF tones in the audio (--inband): the caller reads
    them with the tone reader, and each wait is the ACD's within 60 ms (a tone is known once
    two 20 ms frames of it have come)."""
    journey = Journey(keys="1", talk=Distribution(fixed=1.0).sampler(), longest=30.0,
                      agent_groups=GROUPS)
    records, acd_log = at_acd(tmp_path, ["--group", "sales=1", "--group", "care=1", "--menu",
                                         "1=sales", "--inband"], [journey] * 3, 0.2,
                              read_tones=True)
    assert len(records) == 3 and all(r.prompt_at is not None for r in records), records
    waits = []
    for r in records:
        e = acd_log[("answered", r.call_id)]
        assert r.answered_by == "sales" and abs(wait_of(r) - e["wait"]) <= 0.06, (r, e)
        waits.append(e["wait"])
    assert max(waits) > 1.0  # one agent, three callers: someone waited a whole talk
    assert all("A@" in r.dtmf_heard and "D@" in r.dtmf_heard for r in records)


def test_agents_hang_up_after_their_handle_time_and_waiting_callers_hear_music(tmp_path):
    """--handle fixed:0.6 --hold-music, one agent, three callers who would talk for ever: the
    agent ends each call 0.6 s after answering (its BYE, through to the caller), the ACD logs
    it as ended by the agent, and the callers who waited heard audio the while: music, in
    which the tone reader they run hears no key."""
    journey = Journey(keys="1", talk=Distribution(fixed=30.0).sampler(), longest=30.0)
    records, acd_log = at_acd(tmp_path, ["--group", "sales=1", "--menu", "1=sales", "--handle",
                                         "fixed:0.6", "--hold-music"], [journey] * 3, 0.1,
                              read_tones=True)
    assert len(records) == 3 and all(r.agent_at is not None for r in records), records
    for r in records:
        e = acd_log[("ended", r.call_id)]
        assert e["by"] == "agent" and e["talk"] == pytest.approx(0.6, abs=0.05), e
        assert r.ended_at - r.agent_at == pytest.approx(0.6, abs=0.1), r  # not the 30 s it meant
        keys = {k.split("@")[0] for k in r.dtmf_heard.split()}
        assert keys <= {"A", "D", "1"}, r.dtmf_heard  # the markers and the group's key only
    assert max(wait_of(r) for r in records) > 1.0  # someone waited through the music
