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


@pytest.fixture
def acd(tmp_path):
    port, log = free_udp_port(), tmp_path / "acd.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.acd", "--name", "acd-1",
                             "--listen", f"127.0.0.1:{port}", "--group", f"sales={AGENTS}",
                             "--group", "care=1", "--menu", "1=sales", "--menu", "2=care",
                             "--log", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: options_ping(("127.0.0.1", port), timeout=0.5) == 200, 10, what="the ACD")
        yield port, log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def _journey_call(port: int, journey: Journey, out: list, seed: int) -> None:
    rec, held = start_call(("127.0.0.1", port), CallOptions(hold=journey.longest, invite_timeout=4,
                                                            bye_timeout=2))
    out.append(run_journey(held, journey, random.Random(seed)) if held else rec)


def test_waits_and_abandons_match_the_acd_log_call_by_call(acd):
    port, log = acd
    records: list = []
    threads = []
    for i in range(CALLS):  # every second caller gives up after 1 s in the queue
        journey = Journey(keys="1", talk=Distribution(fixed=TALK).sampler(), longest=30.0)
        if i % 2:  # (the others' patience is endless, the journey's default)
            journey = replace(journey, patience=Distribution(fixed=PATIENCE).sampler())
        t = threading.Thread(target=_journey_call, args=(port, journey, records, i))
        threads.append(t)
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(60)
    assert len(records) == CALLS and all(r.answered for r in records), [r.reason for r in records]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    acd_log = {(e["event"], e["call_id"]): e for e in events}
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
