"""toxiproxy.* against a real Toxiproxy server: the effect is measured on a TCP echo through it."""
import socket
import subprocess
import threading
import time

import pytest

from harness.faults.base import FaultError, lookup
from harness.ops.toxiproxy_api import client as _client
from harness.scenario.inventory import Link, ToxiproxyRef
from tests.conftest import free_tcp_port, need, wait_for


def tcp_echo() -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def _echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


@pytest.fixture
def proxy():
    server = need("toxiproxy-server")
    api_port = free_tcp_port()
    proc = subprocess.Popen([server, "-host", "127.0.0.1", "-port", str(api_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"127.0.0.1:{api_port}"
    wait_for(lambda: _client(api).running(), 10, what="Toxiproxy API")
    created = _client(api).create(upstream=f"127.0.0.1:{tcp_echo()}", name="trunk-tcp",
                                  listen="127.0.0.1:0")  # the server picks a free port
    listen_port = int(created.listen.rsplit(":", 1)[1])
    yield Link(name="trunk-tcp", toxiproxy=ToxiproxyRef(api=api, proxy="trunk-tcp")), listen_port
    proc.terminate()
    proc.wait(5)


def round_trip(port: int, payload: bytes = b"ping") -> float:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the proxy")
            got += chunk
    return time.monotonic() - t0


def build(type_, link, **params):
    cls = lookup(type_)
    return cls(f"t-{type_}", link, cls.Params.model_validate(params))


def test_latency_toxic_measured_and_removed(proxy):
    link, port = proxy
    base = min(round_trip(port) for _ in range(3))
    inj = build("toxiproxy.latency", link, latency=150)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    assert min(round_trip(port) for _ in range(3)) - base == pytest.approx(0.150, abs=0.05)
    assert "removed" in type(inj).undo(recipe)
    assert min(round_trip(port) for _ in range(3)) < base + 0.05
    assert "already gone" in type(inj).undo(recipe)


def test_down_refuses_connections_until_rolled_back(proxy):
    link, port = proxy
    inj = build("toxiproxy.down", link)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    with pytest.raises(OSError):
        round_trip(port)
    type(inj).undo(recipe)
    assert round_trip(port) < 1.0


def test_bandwidth_toxic_throttles_to_the_set_rate(proxy):
    link, port = proxy
    inj = build("toxiproxy.bandwidth", link, rate=100)  # KB/s, downstream
    recipe = inj.recipe()
    inj.inject()
    took = round_trip(port, b"x" * 100_000)  # 100 KB back through a 100 KB/s toxic
    assert took == pytest.approx(1.0, abs=0.35)
    type(inj).undo(recipe)
    assert round_trip(port, b"x" * 100_000) < 0.3


def test_timeout_toxic_and_bad_attribute(proxy):
    link, port = proxy
    inj = build("toxiproxy.timeout", link, timeout=300)
    recipe = inj.recipe()
    inj.inject()
    with pytest.raises(OSError):
        round_trip(port)  # no data, connection closed after 300 ms
    type(inj).undo(recipe)
    bad = build("toxiproxy.latency", link, latncy=10)
    with pytest.raises(FaultError, match="unknown attribute"):
        bad.inject()


@pytest.mark.parametrize("toxic,attrs", [
    ("latency", {"latency": 10, "jitter": 2}), ("bandwidth", {"rate": 1000}),
    ("timeout", {"timeout": 1000}), ("reset_peer", {"timeout": 100}),
    ("slow_close", {"delay": 100}), ("slicer", {"average_size": 64, "size_variation": 8, "delay": 10}),
    ("limit_data", {"bytes": 1000})])
def test_every_toxic_the_server_offers_is_added_and_removed(proxy, toxic, attrs):
    """toxiproxy-python (2019) against the current server: every toxic type round-trips."""
    link, _ = proxy
    inj = build(f"toxiproxy.{toxic}", link, stream="upstream", toxicity=0.5, **attrs)
    recipe = inj.recipe()
    inj.inject()
    listed = _proxy_toxics(link)
    assert listed[recipe["toxic"]]["type"] == toxic
    assert listed[recipe["toxic"]]["attributes"] == attrs
    assert listed[recipe["toxic"]]["stream"] == "upstream"
    assert listed[recipe["toxic"]]["toxicity"] == 0.5
    type(inj).undo(recipe)
    assert recipe["toxic"] not in _proxy_toxics(link)


def _proxy_toxics(link) -> dict:
    import requests
    url = f"http://{link.toxiproxy.api}/proxies/{link.toxiproxy.proxy}/toxics"
    return {t["name"]: t for t in requests.get(url, timeout=5).json()}
