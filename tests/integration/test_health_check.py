"""The steady-state check sees what OPTIONS alone would miss: a transport that died while the
other one answers, and a carrier path that passes keepalives but not voice."""
import asyncio
import threading

from harness.faults.base import lookup
from harness.lab.sip_endpoint import SipTcp
from harness.runner.steady import steady_state
from harness.scenario.inventory import Node, TargetInventory
from harness.sip.message import response_to
from tests.conftest import free_tcp_port


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


def test_a_trunk_that_passes_keepalives_but_not_voice_is_not_healthy(sandbox_up):
    squeezed = sandbox_up.entry_points[1]
    cls = lookup("udp.rate")
    # 4 kbit/s with a 3 kB burst: OPTIONS and one call's signalling fit, 69 kbit/s of RTP does not
    inj = cls("squeeze", squeezed, cls.Params.model_validate({"rate_kbps": 4}))
    recipe = inj.recipe()
    inj.inject()
    try:
        ok, problems = steady_state(sandbox_up, within=0)
    finally:
        cls.undo(recipe)
    assert not ok
    assert len(problems) == 1 and problems[0].startswith(f"{squeezed.name} ") \
        and "media" in problems[0], problems
    assert steady_state(sandbox_up, within=5)[0]
