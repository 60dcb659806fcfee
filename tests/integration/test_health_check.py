"""The steady-state check sees what OPTIONS alone would miss: a transport that died while the
other one answers, and a carrier path that passes keepalives but not voice."""
import asyncio
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from harness.faults.base import lookup
from harness.sip.endpoint import SipTcp
from harness.runner.steady import call_problem, steady_state
from harness.scenario.inventory import EntryPoint, Node, TargetInventory
from harness.sip.message import response_to
from tests.conftest import free_tcp_port, free_udp_port, need
from tests.integration.test_sipp_interop import sipp_count


def test_healthy_sandbox_passes_with_a_media_call_per_carrier(sandbox_up):
    ok, problems = steady_state(sandbox_up, within=5)
    assert ok, problems


def test_a_node_answering_on_tcp_only_is_not_healthy():
    port = free_tcp_port()
    tcp = SipTcp(lambda msg, peer: tcp.send(response_to(msg, 200), peer))
    ready, done = threading.Event(), threading.Event()

    async def serve():
        server = await tcp.serve("127.0.0.1", port)
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.05)
        server.close()
        for writer in list(tcp.conns.values()):
            writer.close()
        await server.wait_closed()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    assert ready.wait(5)
    try:
        both = TargetInventory(name="t", entry_points=[], nodes=[Node(name="sbc", role="sbc", sip=f"127.0.0.1:{port}",
                                                     transports=["udp", "tcp"])])
        ok, problems = steady_state(both, within=0)
        assert not ok and problems == [f"sbc (127.0.0.1:{port}, UDP) does not answer SIP OPTIONS"]
        tcp_only = TargetInventory(name="t", entry_points=[], nodes=[Node(name="sbc", sip=f"127.0.0.1:{port}",
                                                         transports=["tcp"])])
        assert steady_state(tcp_only, within=0) == (True, [])
    finally:
        done.set()
        thread.join(5)


@contextmanager
def squeezed_trunk(inv: TargetInventory):
    """The second carrier squeezed to 4 kbit/s with a 3 kB burst: OPTIONS and one call's
    signalling fit, 69 kbit/s of RTP does not."""
    squeezed = inv.entry_points[1]
    cls = lookup("udp.rate")
    inj = cls("squeeze", squeezed, cls.Params.model_validate({"rate_kbps": 4}))
    recipe = inj.recipe()
    inj.inject()
    try:
        yield squeezed
    finally:
        cls.undo(recipe)


def test_a_trunk_that_passes_keepalives_but_not_voice_is_not_healthy(sandbox_up):
    with squeezed_trunk(sandbox_up) as squeezed:
        ok, problems = steady_state(sandbox_up, within=0)
    assert not ok
    assert len(problems) == 1 and problems[0].startswith(f"{squeezed.name} ") \
        and "media" in problems[0], problems
    assert steady_state(sandbox_up, within=5)[0]


# -- media back: any RTP the far end sends, checked only when the drill carries media ------
SIPP_TONE = Path(__file__).parent / "sipp" / "uas-tone.xml"


def _sipp_far_end(scenario_args: list[str]):
    """A real SIPp callee for one call: `-sn uas` (answers, sends no RTP) or a scenario file."""
    port = free_udp_port()
    proc = subprocess.Popen([need("sipp"), *scenario_args, "-i", "127.0.0.1", "-p", str(port),
                             "-mi", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, EntryPoint(name="trunk", address=f"127.0.0.1:{port}")


def test_a_far_end_that_plays_a_tone_and_never_echoes_has_media_back():
    proc, entry = _sipp_far_end(["-sf", str(SIPP_TONE)])
    try:
        problem = call_problem(entry)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert problem is None
    assert sipp_count(out, "Successful call") == 1  # SIPp's own count: it answered and played


def test_a_far_end_that_sends_no_rtp_is_named_with_what_went_and_what_came_back():
    proc, entry = _sipp_far_end(["-sn", "uas"])
    try:
        problem = call_problem(entry)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert sipp_count(out, "Successful call") == 1  # answered: only the media was missing
    assert problem is not None and problem.startswith("trunk (127.0.0.1:")
    sent = int(problem.split(" sent ")[1].split()[0])
    assert sent >= 40  # 1 s of 20 ms packets went out
    assert "heard 0 back" in problem and "media_check: false" in problem \
        and "rtp_share: 0%" in problem


def test_media_is_checked_only_when_the_drill_carries_it(sandbox_up):
    with squeezed_trunk(sandbox_up) as squeezed:
        assert steady_state(sandbox_up, within=0, media=False) == (True, [])  # rtp_share: 0%
        others = [e.name for e in sandbox_up.entry_points if e is not squeezed]
        assert steady_state(sandbox_up, within=0, carriers=others) == (True, [])
        off = sandbox_up.model_copy(update={"entry_points": [
            e.model_copy(update={"media_check": False}) if e is squeezed else e
            for e in sandbox_up.entry_points]})
        assert steady_state(off, within=0) == (True, [])
        # last, as its test call drains the squeezed bucket: media checked, the squeeze shows
        assert not steady_state(sandbox_up, within=0)[0]
