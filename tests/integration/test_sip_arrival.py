"""Kernel receive stamps: a response read late (the caller's loop stalled) keeps its arrival time.

Real sockets on 127.0.0.1. The pause between send and read is the stall under
test, not a wait for something to happen.
"""
import socket
import time

import pytest

from harness.sip.arrival import receive, stamp_arrivals
from harness.sip.transport import open_transport
from tests.conftest import wait_for

# judged against the wall clock and the host's own packet loss: run alone (README)
pytestmark = pytest.mark.serial
STALL = 0.3


@pytest.fixture(autouse=True)
def stamping_on():
    """The kernel switches arrival stamping on by deferred work once a socket asks for it
    (the harness keeps one such socket for its life): wait until a probe is stamped on arrival."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    stamp_arrivals(rx)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def stamped_on_arrival() -> bool:
        tx.sendto(b"probe", rx.getsockname())
        time.sleep(0.05)  # the probe's own read delay, which a working stamp must not show
        rx.settimeout(1)
        _, _, arrival = receive(rx)
        return time.time() - arrival >= 0.04

    wait_for(stamped_on_arrival, 5, what="arrival stamping switched on")
    rx.close(), tx.close()  # from here only the harness's kept socket holds stamping on

def test_udp_datagram_read_late_keeps_its_arrival_time():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    assert stamp_arrivals(rx)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    sent = time.time()
    tx.sendto(b"hello", rx.getsockname())
    time.sleep(STALL)
    rx.settimeout(2)
    data, sender, arrival = receive(rx)
    read = time.time()
    assert data == b"hello" and sender == tx.getsockname()
    assert sent - 0.005 <= arrival < sent + STALL / 3
    assert read - arrival >= STALL * 0.9


def test_sip_response_over_tcp_read_late_keeps_its_arrival_time():
    server = socket.create_server(("127.0.0.1", 0))
    leg = open_transport("tcp", server.getsockname(), "127.0.0.1", 2.0)
    peer, _ = server.accept()
    sent = time.time()
    peer.sendall(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    time.sleep(STALL)
    msg = leg.receive(time.time() + 2)
    assert msg is not None and msg.status == 200
    assert sent - 0.005 <= msg.received_at < sent + STALL / 3
    leg.close(), peer.close(), server.close()


def test_sip_response_over_udp_carries_its_arrival_time():
    leg = open_transport("udp", ("127.0.0.1", 9), "127.0.0.1", 2.0)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = time.time()
    peer.sendto(b"SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                ("127.0.0.1", leg.port))
    time.sleep(STALL)
    msg = leg.receive(time.time() + 2)
    assert msg is not None and msg.status == 180
    assert sent - 0.005 <= msg.received_at < sent + STALL / 3
    leg.close(), peer.close()
