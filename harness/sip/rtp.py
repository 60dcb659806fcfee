"""RTP packets (RFC 3550) and the receive-side statistics a call record keeps.

G.711 µ-law, 20 ms packets: 160 payload bytes, timestamp step 160 at 8 kHz.

The first bytes of a payload carry measurement data, as RTCP sender and
receiver reports would (RFC 3550 §6.4), without a second socket per call:
a caller's packet says when it was sent; a sandbox PBX's packet says how much
of the caller's stream it received (count, expected, loss bursts) and the send
stamp of the caller's latest packet with how long the PBX has held it, so the
caller gets the round-trip time as RTCP's LSR/DLSR give it. The rest of the
payload is µ-law silence.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

PT_PCMU = 0
PACKET_INTERVAL = 0.020
SAMPLES_PER_PACKET = 160
CLOCK_RATE = 8000
HEADER = struct.Struct("!BBHII")
SILENCE = b"\xff" * SAMPLES_PER_PACKET
CALLER_MAGIC, REPORT_MAGIC = b"HDC1", b"HDR1"
CALLER = struct.Struct("!4sQ")           # magic, send time (ns since the epoch)
REPORT = struct.Struct("!4sQIIII")       # magic, last caller send stamp, held (µs), rx, expected, bursts


def caller_payload(send_ns: int) -> bytes:
    return CALLER.pack(CALLER_MAGIC, send_ns) + SILENCE[CALLER.size:]


def sent_stamp(payload: bytes) -> int | None:
    """The send stamp (ns) a caller's payload carries; None for any other payload."""
    if len(payload) >= CALLER.size and payload[:4] == CALLER_MAGIC:
        return CALLER.unpack_from(payload)[1]
    return None


@dataclass(frozen=True)
class Report:
    """What the far end says of the stream it received (a receiver report in the payload)."""

    last_sent_ns: int
    held_us: int
    received: int
    expected: int
    bursts: int


def report_payload(r: Report) -> bytes:
    return REPORT.pack(REPORT_MAGIC, r.last_sent_ns, r.held_us & 0xFFFFFFFF,
                       r.received & 0xFFFFFFFF, r.expected & 0xFFFFFFFF,
                       r.bursts & 0xFFFFFFFF) + SILENCE[REPORT.size:]


def parse_report(payload: bytes) -> Report | None:
    if len(payload) >= REPORT.size and payload[:4] == REPORT_MAGIC:
        return Report(*REPORT.unpack_from(payload)[1:])
    return None


def build_packet(seq: int, timestamp: int, ssrc: int, payload: bytes = SILENCE,
                 marker: bool = False, pt: int = PT_PCMU) -> bytes:
    return HEADER.pack(0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload


def parse_header(data: bytes) -> tuple[int, int, int] | None:
    """(sequence, timestamp, ssrc) of an RTP packet, or None if it is not one."""
    if len(data) < HEADER.size or data[0] >> 6 != 2:
        return None
    _, _, seq, ts, ssrc = HEADER.unpack_from(data)
    return seq, ts, ssrc


@dataclass
class RtpStats:
    """Receive statistics of one RTP stream, updated per packet.

    loss counts sequence numbers never seen between the first and the highest
    received; jitter is the RFC 3550 §6.4.1 interarrival jitter in seconds;
    max_gap is the longest silence: between two consecutive arrivals, from `started`
    (when the call's media began, if known) to the first arrival, and from the last
    arrival to the end (`close`), since audio that comes late after the answer is as
    silent to the caller as audio that stops; bursts counts
    the runs of lost packets (each jump past the next expected number opens one),
    which with loss and received counts gives the E-model's burst ratio.
    """

    received: int = 0
    first_seq: int | None = None
    highest_seq: int = 0  # extended (with wrap count)
    jitter: float = 0.0
    max_gap: float = 0.0
    bursts: int = 0
    first_arrival: float | None = None
    last_arrival: float | None = None
    started: float | None = None  # when the media began (our first packet's slot)
    _last_transit: float | None = None

    def add(self, seq: int, timestamp: int, arrival: float) -> None:
        if self.first_seq is None:
            self.first_seq = self.highest_seq = seq
            self.first_arrival = arrival
            if self.started is not None:
                self.max_gap = max(self.max_gap, arrival - self.started)
        else:
            ext = self.highest_seq + ((seq - self.highest_seq + 0x8000) & 0xFFFF) - 0x8000
            if ext > self.highest_seq + 1:
                self.bursts += 1
            self.highest_seq = max(self.highest_seq, ext)
            self.max_gap = max(self.max_gap, arrival - (self.last_arrival or arrival))
        transit = arrival - timestamp / CLOCK_RATE
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.jitter += (d - self.jitter) / 16
        self._last_transit = transit
        self.last_arrival = arrival
        self.received += 1

    @property
    def expected(self) -> int:
        return 0 if self.first_seq is None else self.highest_seq - self.first_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def close(self, end: float) -> None:
        """Count the silence from the last packet to the end of the call as a gap."""
        if self.last_arrival is not None:
            self.max_gap = max(self.max_gap, end - self.last_arrival)
