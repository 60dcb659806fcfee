"""The UDP relay measured from outside: the delay, loss and rate it applies are the ones asked for."""
import socket
import subprocess
import sys
import time

import pytest

from harness.faults.base import FaultError, lookup
from harness.faults.base import relay_command
from harness.ops.state import private_token
from harness.scenario.inventory import EntryPoint, split_address
from tests.conftest import free_tcp_port, free_udp_port, wait_for
from tests.udp_probe import echo_server, probe


TOKEN: dict = {}  # the token file of the running relay fixture


@pytest.fixture
def relay(tmp_path):
    """A relay in front of a UDP echo server, both on loopback, its control channel asking
    for a token; yields (relay addr, control)."""
    echo_port, stop = echo_server()
    port, cport = free_udp_port(), free_tcp_port()  # the control channel is TCP
    token = str(private_token(tmp_path / "relay.token"))
    TOKEN["file"] = token
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.relay", "--name", "t",
                             "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{echo_port}",
                             "--control", f"127.0.0.1:{cport}", "--seed", "5", "--token-file", token])
    control = f"127.0.0.1:{cport}"

    def ready():
        try:
            return relay_command(control, {"op": "list"}, token)["ok"]
        except FaultError:
            return False

    wait_for(ready, 10, what="relay control channel")
    yield ("127.0.0.1", port), control
    proc.terminate()
    proc.wait(5)
    stop.set()


def injector(type_, control, **params):
    cls = lookup(type_)
    return cls("t", EntryPoint(name="trunk", address="127.0.0.1:1", relay=control,
                               relay_token_file=TOKEN["file"]),
               cls.Params.model_validate(params))


def test_latency_is_applied_within_tolerance(relay):
    addr, control = relay
    base = sorted(probe(addr, 100).values())[50]
    inj = injector("udp.latency", control, latency_ms=80, stream="upstream")
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    rtts = sorted(probe(addr, 100).values())
    median = rtts[50]
    assert median - base == pytest.approx(0.080, abs=0.015)  # stated tolerance: ±15 ms
    type(inj).undo(recipe)
    assert sorted(probe(addr, 100).values())[50] < base + 0.015


def test_loss_ratio_is_applied_within_tolerance(relay):
    addr, control = relay
    inj = injector("udp.loss", control, ratio=0.3, stream="downstream")
    recipe = inj.recipe()
    inj.inject()
    got = len(probe(addr, 2000, interval=0.0005))
    # binomial sd for n=2000, p=0.7 is about 1 %: allow 4 sd
    assert got / 2000 == pytest.approx(0.7, abs=0.04)
    assert "removed" in type(inj).undo(recipe)
    assert len(probe(addr, 200)) == 200
    assert "already gone" in type(inj).undo(recipe)


def test_rate_cap_and_blackhole(relay):
    addr, control = relay
    cap = injector("udp.rate", control, rate_kbps=64, burst_bytes=1000, stream="upstream")
    r = cap.recipe()
    cap.inject()
    # 500 datagrams of 200 bytes in about 1 s = 800 kbit/s offered against a 64 kbit/s cap
    t0 = time.monotonic()
    got = len(probe(addr, 500, interval=0.002, size=200))
    elapsed = time.monotonic() - t0 - 1.0
    allowed = (64_000 / 8 * elapsed + 1000) / 200
    assert got == pytest.approx(allowed, rel=0.25) and got < 500 * 0.25
    type(cap).undo(r)
    bh = injector("udp.blackhole", control)
    r = bh.recipe()
    bh.inject()
    assert probe(addr, 20, wait=0.5) == {}
    type(bh).undo(r)
    assert len(probe(addr, 20)) == 20


def test_relay_refuses_a_bad_toxic(relay):
    _, control = relay
    with pytest.raises(FaultError, match="refused add"):
        relay_command(control, {"op": "add", "toxic": {"name": "x", "type": "netem"}}, TOKEN["file"])


def test_the_control_channel_takes_only_requests_with_the_token(relay, tmp_path):
    _, control = relay
    blackhole = {"op": "add", "toxic": {"name": "cut", "type": "blackhole"}}
    with pytest.raises(FaultError, match="token is needed"):
        relay_command(control, blackhole)  # anyone on the machine, no token: refused
    wrong = tmp_path / "wrong.token"
    wrong.write_text("guess")
    with pytest.raises(FaultError, match="token is needed"):
        relay_command(control, blackhole, str(wrong))
    assert relay_command(control, {"op": "list"}, TOKEN["file"])["toxics"] == []  # nothing added
    with socket.create_connection(split_address(control), timeout=2) as s:
        s.sendall(b"[1, 2]\n")  # a JSON value that is not a request: an error, not a crash
        assert b"not a JSON object" in s.recv(4096)
    assert relay_command(control, {"op": "list"}, TOKEN["file"])["ok"]
