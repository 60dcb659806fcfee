"""A caller's journey against a real far end: SIPp as the contact centre, sending its own
RFC 2833 recordings (sipp/uas-contact-centre.xml): the prompt marker 300 ms after the ACK,
the agent's marker after a queue wait SIPp draws per call and logs, then the group's key.
Each journey's wait is SIPp's own, within 40 ms, and the group is the one its key names."""
import re
import subprocess
import threading
from pathlib import Path

import pytest

from harness.load.journey import Journey, run_journey
from harness.sip.uac import CallOptions, start_call
from tests.conftest import free_udp_port, need, wait_for
from tests.integration.test_sipp_interop import sipp_count

SCENARIO = Path(__file__).parent / "sipp" / "uas-contact-centre.xml"
CALLS = 4


def sipp_waits(log: Path) -> dict[str, float]:
    """Call-ID -> the queue wait SIPp drew for it (its own log), in seconds."""
    return {m[1]: float(m[2]) / 1000
            for m in re.finditer(r"(\S+) wait_ms ([0-9.]+)", log.read_text())}


def test_journeys_read_the_waits_and_groups_sipp_sent(tmp_path):
    import random
    port, log = free_udp_port(), tmp_path / "sipp.log"
    proc = subprocess.Popen([need("sipp"), "-sf", str(SCENARIO), "-i", "127.0.0.1",
                             "-p", str(port), "-mi", "127.0.0.1", "-m", str(CALLS), "-nostdin",
                             "-timeout", "40s", "-trace_logs", "-log_file", str(log)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    journey = Journey(prompt_marker="1", agent_marker="9", agent_groups={"2": "care"},
                      talk=lambda rng: 0.5, longest=20.0)
    records = []

    def one(seed):
        rec, held = start_call(("127.0.0.1", port), CallOptions(hold=20.0, invite_timeout=4,
                                                                bye_timeout=2))
        records.append(run_journey(held, journey, random.Random(seed)) if held else rec)
    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(CALLS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert sipp_count(out, "Successful call") == CALLS, out[-1500:]
    waits = sipp_waits(log)
    assert len(records) == CALLS and set(waits) == {r.call_id for r in records}, waits
    for r in records:
        assert r.prompt_at - r.answered_at == pytest.approx(0.3, abs=0.04), r.call_id
        assert r.agent_at - r.queued_at == pytest.approx(waits[r.call_id], abs=0.04), r.call_id
        assert r.answered_by == "care" and not r.turned_away and r.abandoned_at is None
    assert len({round(w, 1) for w in waits.values()}) > 1  # waits drawn per call, not one


RINGING = Path(__file__).parent / "sipp" / "uas-ringing-queue.xml"


def bound(port: int) -> bool:
    """Whether some process (SIPp) holds this UDP port on 127.0.0.1."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.parametrize("patience, agent", [(3.0, True), (0.8, False)])
def test_a_queue_that_answers_when_an_agent_picks_up(tmp_path, patience, agent):
    """agent_marker: answer. SIPp rings 1.5 s, then the 200 is the agent: a caller with 3 s of
    patience waited 1.5 s; one with 0.8 s CANCELs and abandoned after 0.8 s (SIPp saw the
    CANCEL: its call ended by the CANCEL branch)."""
    import random
    from harness.load.journey import answer_patience, unanswered
    port = free_udp_port()
    proc = subprocess.Popen([need("sipp"), "-sf", str(RINGING), "-i", "127.0.0.1", "-p", str(port),
                             "-mi", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "20s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: bound(port), 10, what="SIPp to listen")  # the INVITE is the wait's start
    journey = Journey(prompt_marker=None, agent_marker="answer", talk=lambda rng: 0.5,
                      patience=lambda rng: patience, longest=20.0)
    try:
        rng = random.Random(1)
        rec, held = start_call(("127.0.0.1", port), CallOptions(
            hold=20.0, invite_timeout=answer_patience(journey, rng), bye_timeout=2))
        rec = run_journey(held, journey, rng) if held else unanswered(rec, journey)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert sipp_count(out, "Successful call") == 1, out[-1500:]
    assert rec.journey and rec.queued_at == rec.started_at
    if agent:
        assert rec.agent_at - rec.queued_at == pytest.approx(1.5, abs=0.04)
        assert rec.abandoned_at is None and rec.outcome == "completed", rec.reason
    else:
        assert rec.agent_at is None and rec.ringing_at is not None
        assert rec.abandoned_at - rec.queued_at == pytest.approx(patience, abs=0.04)


REINVITE = Path(__file__).parent / "sipp" / "uas-reinvite-agent.xml"


def test_an_agent_who_answers_with_a_reinvite(tmp_path):
    """agent_marker: reinvite. SIPp plays the prompt, waits a time it draws and logs, then
    re-INVITEs the media to the agent's phone (127.0.0.2): the caller answers it (SIPp's call succeeds only
    if our 200 came), its wait is SIPp's within 40 ms, and its media goes there."""
    import random
    port, log = free_udp_port(), tmp_path / "sipp.log"
    proc = subprocess.Popen([need("sipp"), "-sf", str(REINVITE), "-i", "127.0.0.1",
                             "-p", str(port), "-mi", "127.0.0.1", "-m", "2", "-nostdin",
                             "-timeout", "30s", "-trace_logs", "-log_file", str(log)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    journey = Journey(prompt_marker="1", agent_marker="reinvite", talk=lambda rng: 0.5,
                      longest=20.0)
    records, moved = [], []
    try:
        for seed in range(2):
            rec, held = start_call(("127.0.0.1", port), CallOptions(hold=20.0, invite_timeout=4,
                                                                    bye_timeout=2))
            first = held.stream.remote
            records.append(run_journey(held, journey, random.Random(seed)))
            moved.append(held.stream.remote[0] == "127.0.0.2" and first[0] == "127.0.0.1")
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert sipp_count(out, "Successful call") == 2, out[-1500:]
    waits = sipp_waits(log)
    for r in records:
        assert r.agent_at - r.queued_at == pytest.approx(waits[r.call_id], abs=0.04), r.call_id
        assert r.abandoned_at is None and r.outcome == "completed", r.reason
    assert all(moved)
