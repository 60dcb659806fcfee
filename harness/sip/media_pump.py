"""Every call's RTP from one loop: the caller side's media at a few hundred calls per core.

A loop per call (sleep to its next 20 ms slot, wake, send one packet, read)
costs a wake-up and a switch per packet per call: at 100 calls that alone
filled a core and packets left late. The pump keeps every stream in one heap
ordered by when it next needs service, wakes when the earliest is due, and
serves every stream due by then: it sends the packets whose slots have come
and reads whatever the stream's socket holds. Reading up to one packet time
late changes no figure: arrivals carry the kernel's receive stamp
(arrival.py), not the time they were read.

The heap (heapq) stands in for a timer wheel: with a few hundred streams a
push and a pop cost about a microsecond each, less than the send itself.
The pump is a thread; under Locust, gevent makes it a greenlet, and its
waits (an Event with a timeout) let the calls' signalling run between its
rounds. It never sleeps less than MIN_WAIT, so a dense schedule costs a
bounded number of wake-ups per second, not one per packet.
"""
from __future__ import annotations

import heapq
import itertools
import random
import socket
import struct
import threading
import time

from harness.metrics.records import CallRecord
from harness.sip import rtp
from harness.sip.arrival import ANCILLARY, stamp_of
from harness.sip import dtmf
from harness.sip.dtmf import EventReader, Heard, KeyPress, ToneReader
from harness.sip.srtp import SrtpContext

RTP_SEND_LATE = 0.005  # a packet sent later than this after its 20 ms slot is late
MIN_WAIT = 0.001       # the pump's shortest sleep between rounds
# the far end's packets of the hold's last 100 ms may still be on the wire when the hold ends
# (each relay and anchor on the path holds them a few ms, more on a loaded machine): they are
# not required. A silence longer than that at the end still counts, and so does its gap.
IN_FLIGHT_PACKETS = 5
_SEQ_TS = struct.Struct("!HI")                  # sequence number and timestamp, at offset 2
_STAMP = struct.Struct("!Q")                    # the caller's send stamp in the payload
_STAMP_AT = rtp.HEADER.size + len(rtp.CALLER_MAGIC)


class FarEnd:
    """What the far end tells of our stream: its receiver reports (a sandbox PBX) or our own
    packets coming back (an echoing one, such as SIPp's -rtp_echo); round-trip times from both."""

    __slots__ = ("ssrc", "report", "echo", "rtt_sum", "rtt_n", "rtt_min")

    def __init__(self, ssrc: int):
        self.ssrc = ssrc
        self.report: rtp.Report | None = None
        self.echo = False
        self.rtt_sum, self.rtt_n, self.rtt_min = 0.0, 0, None

    def heard(self, ssrc: int, payload: bytes, arrival: float) -> None:
        report = rtp.parse_report(payload)
        if report is not None:
            fresh = self.report is None or report.last_sent_ns != self.report.last_sent_ns
            if self.report is None or report.received >= self.report.received:
                self.report = report
            if fresh and report.last_sent_ns:
                self._rtt(arrival - report.last_sent_ns / 1e9 - report.held_us / 1e6)
        elif ssrc == self.ssrc:
            self.echo = True
            sent = rtp.sent_stamp(payload)
            if sent is not None:
                self._rtt(arrival - sent / 1e9)

    def _rtt(self, rtt: float) -> None:
        if 0 <= rtt < 60:
            self.rtt_sum, self.rtt_n = self.rtt_sum + rtt, self.rtt_n + 1
            self.rtt_min = rtt if self.rtt_min is None else min(self.rtt_min, rtt)

    def into(self, rec: CallRecord) -> None:
        rec.rtp_echo = self.echo
        if self.report is not None:
            rec.rtp_up_expected = self.report.expected
            rec.rtp_up_received = self.report.received
            rec.rtp_up_bursts = self.report.bursts
        if self.rtt_n:
            rec.rtp_rtt_ms = round(self.rtt_sum / self.rtt_n * 1000, 3)
            rec.rtp_rtt_min_ms = round(self.rtt_min * 1000, 3)


class MediaStream:
    """One call's RTP both ways for its hold: what it sent, what came back, when it is done."""

    __slots__ = ("sock", "remote", "rec", "end", "start", "next_send", "seq", "ts", "packet",
                 "stats", "far", "done", "srtp", "events_pt", "events", "keys", "pressing",
                 "tones", "tones_from")

    def __init__(self, sock: socket.socket, remote: tuple[str, int], rec: CallRecord, end: float,
                 srtp: SrtpContext | None = None, events_pt: int | None = None,
                 keys: list[KeyPress] = (), read_tones: bool = False):
        self.sock, self.remote, self.rec, self.end = sock, remote, rec, end
        self.srtp = srtp  # the call's SRTP keys, or None for plain RTP
        # the far end's RFC 4733 payload type (its answer's), and the digits its events carry
        self.events_pt, self.events = events_pt, EventReader()
        # in-band tones in its µ-law audio, where asked: the reader's clock starts at the
        # arrival of the first packet it was fed
        self.tones, self.tones_from = (ToneReader() if read_tones else None), None
        # key presses to send, earliest first, and the one being sent: (press, its packets)
        self.keys = sorted(keys, key=lambda k: k.at)
        self.pressing: tuple[KeyPress, list, int] | None = None  # (+ the event's timestamp)
        # a random phase within the first packet time: calls placed on an exact arrival clock
        # would otherwise all send in the same instant every 20 ms, and the last of each burst
        # would leave late (real phones' streams have no common phase either)
        self.start = self.next_send = time.time() + random.uniform(0, rtp.PACKET_INTERVAL)
        self.seq, self.ts = random.randrange(65536), 0
        ssrc = random.getrandbits(32)
        # one packet, rewritten in place for each send: header fields and the send stamp
        self.packet = bytearray(rtp.build_packet(0, 0, ssrc, rtp.caller_payload(0)))
        self.stats = rtp.RtpStats(started=self.start)
        self.far = FarEnd(ssrc)
        self.done = threading.Event()

    def keys_heard(self) -> list[Heard]:
        """Every key the far end sent so far, from its start (wall clock): its RFC 4733
        events, and where read, its in-band tones (each once it has ended)."""
        return sorted(list(self.events.begun) + self._tones_heard(), key=lambda h: h.at)

    def _tones_heard(self) -> list[Heard]:
        """The in-band tones read so far, on the wall clock (none where not read)."""
        if self.tones is None or self.tones_from is None:
            return []
        return [Heard(h.digit, self.tones_from + h.at, h.seconds) for h in list(self.tones.heard)]

    def press(self, keys: list[KeyPress]) -> None:
        """Keys to press from now on (each at its time, after any pressed before)."""
        self.keys.extend(keys)

    @property
    def due(self) -> float:
        return min(self.next_send, self.end)

    def stop(self) -> None:
        """End the media now (the far end hung up): the pump's next round finishes it."""
        self.end = min(self.end, time.time())

    def serve(self, now: float) -> bool:
        """Read what came, send what is due; False once the hold is over (or the socket gone)."""
        try:
            self._read()
            while self.next_send <= now and self.next_send < self.end:
                self._send(now)
        except OSError:  # the call closed its socket (killed mid-call): nothing more to do
            return False
        return now < self.end

    def _send(self, now: float) -> None:
        rec = self.rec
        if now - self.next_send > RTP_SEND_LATE:
            rec.rtp_send_late += 1  # our own slip, not the hotline's (metrics/generator.py)
        if self.pressing or (self.keys and self.keys[0].at <= self.next_send):
            self._put(*self._key_packet())
            return
        p = self.packet
        p[1] = (0x80 if rec.rtp_sent == 0 else 0) | rtp.PT_PCMU
        _SEQ_TS.pack_into(p, 2, self.seq & 0xFFFF, self.ts & 0xFFFFFFFF)
        _STAMP.pack_into(p, _STAMP_AT, time.time_ns())
        self._put(p if self.srtp is None else bytes(p))

    def _put(self, data: bytes | bytearray, copies: int = 1) -> None:
        """Send this slot's packet (protected, over SRTP), `copies` times; the next slot."""
        if self.srtp is not None:
            data = self.srtp.protect(data)  # (never None: our numbers only go forward)
        for _ in range(copies):
            try:
                if data is not None:
                    self.sock.sendto(data, self.remote)
            except (BlockingIOError, ConnectionRefusedError, PermissionError):
                pass  # a full buffer, an ICMP error, a local firewall: gone, as on a wire
        self.rec.rtp_sent += 1
        self.seq, self.ts = self.seq + 1, self.ts + rtp.SAMPLES_PER_PACKET
        self.next_send += rtp.PACKET_INTERVAL

    def _key_packet(self) -> tuple[bytes, int]:
        """This slot's packet of a key press and how many times it goes: an RFC 4733 event
        (the answer's payload type; the end three times, one number), or the tone itself in
        the audio (in-band, or when the far end takes no events)."""
        rec = self.rec
        if self.pressing is None:
            key = self.keys.pop(0)
            inband = key.inband or self.events_pt is None
            packets = dtmf.tone_payloads(key.digit, key.ms) if inband else \
                dtmf.event_packets(key.digit, key.ms)
            self.pressing = (key, packets, self.ts)
            rec.dtmf_sent = (rec.dtmf_sent + " " if rec.dtmf_sent else "") + \
                f"{key.digit}@{self.next_send - (rec.answered_at or self.start):.3f}"
        _, packets, start_ts = self.pressing
        item, copies = packets.pop(0), 1
        if isinstance(item, bytes):  # a tone's 20 ms of µ-law audio
            data = rtp.build_packet(self.seq, self.ts, self._ssrc(), item)
        else:
            marker, event = item
            data = rtp.build_packet(self.seq, start_ts, self._ssrc(), dtmf.event_payload(event),
                                    marker, self.events_pt)
            if event.end:
                copies, packets[:] = 1 + len(packets), []
        if not packets:
            self.pressing = None
        return data, copies

    def _ssrc(self) -> int:
        return int.from_bytes(self.packet[8:12], "big")

    def _read(self) -> None:
        after = self.rec.answered_at or 0.0
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(2048, ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:  # an ICMP error for an earlier send: read on
                continue
            arrival = stamp_of(ancdata) or time.time()
            if self.srtp is not None:
                data = self.srtp.unprotect(data)
                if data is None:  # failed authentication (counted): not audio, not loss
                    continue
            hdr = rtp.parse_header(data)
            if hdr and arrival >= after:  # what came before the answer is not the call's
                self.stats.add(hdr[0], hdr[1], arrival)  # (events share the audio's numbers)
                if data[1] & 0x7F == self.events_pt:
                    self.events.add(hdr[1], data[rtp.HEADER.size:], arrival)
                else:
                    self.far.heard(hdr[2], data[rtp.HEADER.size:], arrival)
                    if self.tones is not None and data[1] & 0x7F == 0:  # PCMU
                        self.tones_from = self.tones_from or arrival
                        self.tones.add_ulaw(data[rtp.HEADER.size:])

    def finish(self) -> None:
        """What the call record keeps of the stream; then the call may go on to its BYE."""
        rec = self.rec
        # what we should have received: one packet per 20 ms of hold, less those still in
        # flight at its end unless they were seen to be sent (a later one arrived)
        held = int(round((self.end - self.start) / rtp.PACKET_INTERVAL))
        rec.rtp_expected = max(min(self.stats.expected, held), held - IN_FLIGHT_PACKETS)
        if self.stats.first_arrival is None:
            self.stats.max_gap = max(0.0, self.end - self.start)
        self.far.into(rec)
        self.events.close()
        if self.tones is not None:
            self.tones.close()
        heard = sorted(list(self.events.heard) + self._tones_heard(), key=lambda h: h.at)
        if heard:  # each digit, seconds after the answer
            rec.dtmf_heard = " ".join(f"{h.digit}@{h.at - (rec.answered_at or self.start):.3f}"
                                      for h in heard)
        if self.srtp is not None:
            rec.srtp_auth_failed = self.srtp.auth_failed
            if self.srtp.auth_failed and not self.stats.received:
                rec.reason = (f"no audio: SRTP authentication failed "
                              f"({self.srtp.auth_failed} packets)")
        self.done.set()


class MediaPump:
    """The loop that serves every stream of this process (see the module's docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._new: list[MediaStream] = []
        self._wake = threading.Event()
        self._order = itertools.count()  # ties in the heap: first come, first served
        self.dead = False
        self.thread = threading.Thread(target=self._run, name="media-pump", daemon=True)

    def add(self, stream: MediaStream) -> MediaStream:
        with self._lock:
            self._new.append(stream)
        self._wake.set()
        return stream

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.dead = True  # media_pump() starts another for the next calls

    def _loop(self) -> None:
        heap: list[tuple[float, int, MediaStream]] = []
        while True:
            self._wake.clear()
            with self._lock:
                new, self._new = self._new, []
            for s in new:
                heapq.heappush(heap, (s.due, next(self._order), s))
            if not heap:
                self._wake.wait()
                continue
            now = time.time()
            while heap and heap[0][0] <= now:
                s = heapq.heappop(heap)[2]
                if s.serve(now):
                    heapq.heappush(heap, (s.due, next(self._order), s))
                else:
                    s.finish()
            if heap:
                self._wake.wait(max(MIN_WAIT, heap[0][0] - time.time()))


_pump: MediaPump | None = None
_pump_lock = threading.Lock()


def media_pump() -> MediaPump:
    """This process's pump, started on first use (again if its loop ever died).

    The lock may be a real one (this module is imported before Locust patches the
    standard library for gevent): it is never held across a switch, so the thread is
    started only after it is released; a greenlet blocking on a real lock held by
    another greenlet would stop the whole process."""
    global _pump
    with _pump_lock:
        fresh = _pump is None or _pump.dead
        if fresh:
            _pump = MediaPump()
        pump = _pump
    if fresh:
        pump.thread.start()
    return pump


def stream_rtp(sock: socket.socket, remote: tuple[str, int], rec: CallRecord,
               end: float, srtp: SrtpContext | None = None,
               events_pt: int | None = None, keys: list[KeyPress] = (),
               read_tones: bool = False) -> MediaStream:
    """Start one call's RTP (SRTP with `srtp`) until `end` (wall clock); `.done` is set when
    its figures are in."""
    sock.setblocking(False)
    return media_pump().add(MediaStream(sock, remote, rec, end, srtp, events_pt, keys,
                                        read_tones))
