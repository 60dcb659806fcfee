"""sipflood.scan: real sipvicious traffic, counted by a listener, bounded and stoppable."""
import socket
import threading

import pytest

from harness.faults.base import lookup
from harness.ops.procs import proc_state
from harness.scenario.inventory import Node
from harness.sip.message import SipParseError, parse, response_to
from harness.sip.uac import CallOptions, place_call
from tests.conftest import need, wait_for


@pytest.fixture
def counting_sbc():
    """A UDP SIP listener that answers every request 404 and counts them by method."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    seen, stop = {}, threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
                msg = parse(data)
            except (socket.timeout, SipParseError):
                continue
            if msg.is_request:
                seen[msg.method] = seen.get(msg.method, 0) + 1
                if msg.method != "ACK":
                    sock.sendto(response_to(msg, 404).to_bytes(), addr)

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{sock.getsockname()[1]}", seen
    stop.set()


def build(target, **params):
    cls = lookup("sipflood.scan")
    return cls("scan", target, cls.Params.model_validate(params))


def test_scan_sends_the_bounded_number_of_requests(counting_sbc):
    need("sipvicious_svwar")
    addr, seen = counting_sbc
    inj = build(Node(name="sbc", sip=addr), extensions=300, method="OPTIONS", max_seconds=30)
    recipe = inj.recipe()
    inj.inject()
    recipe.update(inj.recipe_after_inject())
    assert inj.verify()
    wait_for(lambda: inj._proc.poll() is not None, 30, what="the scan to finish by itself")
    # 300 extensions, plus svwar's few sanity probes; never unbounded
    assert 300 <= seen.get("OPTIONS", 0) <= 320
    assert "had finished" in type(inj).undo(recipe)


def test_rollback_stops_a_running_scan(counting_sbc):
    addr, seen = counting_sbc
    inj = build(Node(name="sbc", sip=addr), extensions=100000, method="REGISTER",
                max_seconds=60, throttle=0.05)
    recipe = inj.recipe()
    inj.inject()
    recipe.update(inj.recipe_after_inject())
    wait_for(lambda: seen.get("REGISTER", 0) > 20, 20, what="scan traffic")
    note = type(inj).undo(recipe)
    assert "stopped" in note and proc_state(recipe["pid"]) is None
    count = seen["REGISTER"]
    assert count < 100000


def test_calls_survive_a_scan_against_the_sandbox_sbc(sandbox_up):
    sbc = sandbox_up.find("sbc")
    inj = build(sbc, extensions=3000, method="REGISTER", max_seconds=20)
    recipe = inj.recipe()
    inj.inject()
    recipe.update(inj.recipe_after_inject())
    calls = [place_call(sandbox_up.entry_points[i % 3].addr, CallOptions(hold=0.3, rtp=False))
             for i in range(6)]
    type(inj).undo(recipe)
    assert [c.outcome for c in calls] == ["completed"] * 6
