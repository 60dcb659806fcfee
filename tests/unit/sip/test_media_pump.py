"""The media pump against real loopback sockets: an echoing far end and a reporting one."""
import _socket
import socket
import time

from harness.metrics.records import CallRecord
from harness.sip import dtmf, rtp
from harness.sip.dtmf import KeyPress
from harness.sip.arrival import stamp_arrivals
from harness.sip.media_pump import MediaStream, stream_rtp
from tests.conftest import wait_for
from tests.udppeer import UdpPeer


class FarEndSocket(UdpPeer):
    """A far end on 127.0.0.1: echoes every packet, or answers each with a receiver report,
    or (drop_every=k) leaves every k-th caller packet unanswered."""

    def __init__(self, mode: str = "echo", drop_every: int = 0):
        self.mode, self.drop_every, self.seq = mode, drop_every, 0
        super().__init__(self._answer)

    @property
    def address(self):
        return self.addr

    def _answer(self, data, sender):
        if self.drop_every and self.got % self.drop_every == 0:
            return
        if self.mode == "echo":
            self.sock.sendto(data, sender)
            return
        stamp = rtp.sent_stamp(data[rtp.HEADER.size:])
        report = rtp.Report(stamp, 0, self.got, self.got, 0)
        self.sock.sendto(rtp.build_packet(self.seq, self.seq * 160, 7, rtp.report_payload(report)),
                         sender)
        self.seq += 1


def media_socket():
    s = _socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    stamp_arrivals(s)
    return s


def long_stream(far: FarEndSocket, hold: float = 30.0):
    """One answered call's stream, far longer than the test: the test ends it."""
    rec = CallRecord(call_id="x", carrier="a", hold_planned=hold, media=True)
    rec.answered_at = time.time()
    sock = media_socket()
    return rec, sock, stream_rtp(sock, far.address, rec, time.time() + hold)


def run_streams(n: int, hold: float, far: FarEndSocket) -> list[tuple[CallRecord, MediaStream]]:
    out = []
    for _ in range(n):
        rec = CallRecord(call_id="x", carrier="a", hold_planned=hold, media=True)
        rec.answered_at = time.time()
        sock = media_socket()
        out.append((rec, stream_rtp(sock, far.address, rec, time.time() + hold), sock))
    for _, stream, sock in out:
        assert stream.done.wait(hold + 10)
        sock.close()
    return [(r, s) for r, s, _ in out]


def test_every_stream_sends_its_packets_and_hears_its_echo():
    far = FarEndSocket("echo")
    try:
        calls = run_streams(20, 1.0, far)
    finally:
        far.close()
    for rec, stream in calls:
        assert 49 <= rec.rtp_sent <= 51, rec.rtp_sent  # 1 s of 20 ms packets
        assert rec.rtp_expected in (49, 50)  # the random phase takes up to one packet time
        assert stream.stats.received >= rec.rtp_sent - 1  # loopback: the last may be in flight
        assert stream.stats.bursts == 0
        assert rec.rtp_echo and rec.rtp_rtt_ms is not None and rec.rtp_rtt_ms < 50
    assert far.got == sum(r.rtp_sent for r, _ in calls)
    # the sequence numbers run on from one random start: the far end saw no gap
    assert all(s.stats.lost == 0 for _, s in calls)


def test_a_reporting_far_end_gives_the_upstream_figures():
    far = FarEndSocket("report", drop_every=10)  # every 10th caller packet "lost" on the way back
    try:
        [(rec, stream)] = run_streams(1, 1.0, far)
    finally:
        far.close()
    assert not rec.rtp_echo
    assert rec.rtp_up_received >= 45  # what the far end said it received
    assert rec.rtp_rtt_ms is not None  # from the echoed send stamp and the held time
    # downstream: the reports are the far end's stream, one per caller packet less the dropped
    assert stream.stats.received == rec.rtp_sent - rec.rtp_sent // 10


def test_stop_ends_the_stream_at_once_and_expects_only_what_was_due():
    far = FarEndSocket("echo")
    try:
        rec, sock, stream = long_stream(far)
        while rec.rtp_sent < 10:  # bounded by the wait below: 10 packets take 0.2 s
            assert not stream.done.wait(0.02)
        stream.stop()
        assert stream.done.wait(2.0)
        sock.close()
    finally:
        far.close()
    assert 10 <= rec.rtp_sent < 30
    assert abs(rec.rtp_expected - rec.rtp_sent) <= 1


def test_a_closed_socket_ends_the_stream_without_killing_the_pump():
    far = FarEndSocket("echo")
    try:
        rec, sock, stream = long_stream(far)
        sock.close()  # the call was killed mid-hold
        assert stream.done.wait(2.0)
        calls = run_streams(2, 0.3, far)  # the pump serves the next calls as before
    finally:
        far.close()
    assert all(r.rtp_sent >= 14 for r, _ in calls)


FIRST_USE_UNDER_GEVENT = """
import harness.sip.uac  # imported before gevent patches the standard library, as the CLI does
import harness.load.sip_load  # Locust: gevent's monkey patching
import gevent
from harness.sip.media_pump import media_pump
pumps = gevent.joinall([gevent.spawn(media_pump) for _ in range(20)], timeout=10)
assert len({g.value for g in pumps}) == 1, "one pump for the process"
print("ok")
"""


def test_many_greenlets_starting_the_pump_at_once_share_one_and_never_deadlock():
    # the first greenlet to need the pump starts its thread, which switches: a lock (real, from
    # before the patching) held across that switch stopped the whole process before
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-c", FIRST_USE_UNDER_GEVENT], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


class Recorder(UdpPeer):
    """A far end that keeps every datagram, for what the stream sent."""

    def __init__(self):
        self.packets = []
        super().__init__(lambda data, sender: self.packets.append(data))


def test_a_key_press_goes_out_as_rfc_4733_events_in_the_streams_own_numbering():
    far = Recorder()
    rec = CallRecord(call_id="k", carrier="a", hold_planned=0.6, media=True)
    rec.answered_at = time.time()
    sock = media_socket()
    stream = stream_rtp(sock, far.addr, rec, time.time() + 0.6, events_pt=101,
                        keys=[KeyPress(time.time() + 0.2, "7", 100)])
    assert stream.done.wait(10)
    wait_for(lambda: len(far.packets) >= rec.rtp_sent + 2, 5, what="every packet at the far end")
    sock.close()
    heads = [(p[1] & 0x7F, p[1] >> 7, *rtp.parse_header(p)[:2]) for p in far.packets]
    events = [(h, p) for h, p in zip(heads, far.packets) if h[0] == 101]
    # 5 updates and the end three times, all with the event's start timestamp, the first
    # with the marker; the end's copies share one sequence number
    assert len(events) == 8 and events[0][0][1] == 1 and not any(h[1] for h, _ in events[1:])
    assert len({h[3] for h, _ in events}) == 1
    parsed = [dtmf.parse_event(p[12:]) for _, p in events]
    assert [e.digit for e in parsed] == ["7"] * 8 and [e.end for e in parsed] == [False] * 5 + [True] * 3
    assert [e.duration for e in parsed] == [0, 160, 320, 480, 640, 800, 800, 800]
    assert len({h[2] for h, _ in events[5:]}) == 1
    # the audio goes on around it in one numbering: no number skipped, none used twice
    seqs = [h[2] for h, _ in events[:6]] + [h[2] for h in heads if h[0] == 0]
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + len(seqs)))
    assert rec.dtmf_sent.startswith("7@0.2")
