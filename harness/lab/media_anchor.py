"""Media anchoring: the RTP of a call flows through this element, as through a real SBC.

An SBC (and a carrier's border element) writes its own address into the SDP
it passes on, so both ends send their audio to it and it relays between them.
That is what puts the carrier paths in the media path: a `udp.*` fault on a
carrier relay then degrades the audio of exactly the calls that entered
through it, while the other carriers' calls stay clean.

Each call gets two sockets: one the caller side sends to (on `caller_ip`),
one the hotline side sends to (on `hotline_ip`). A packet from one side goes
out of the other socket to the address the far side's SDP gave. `forward`
decides how a packet is sent (the relay applies its toxics there). Sockets
are plain non-blocking ones read by the event loop's reader callbacks: no
task or timer per packet, so a few hundred calls cost little.

With `srtp` on, the anchor ends SRTP on the caller side as an SBC facing carriers
does (rtpengine's SDES): an offer with `a=crypto` goes on to the hotline in the
clear (RTP/AVP, no key), and the answer comes back with a key of the anchor's own
(RTP/SAVP if the offer was). The caller's packets are unprotected with the
caller's key, the hotline's protected with ours; a packet that fails
authentication is counted and dropped. `wrong_key` sends with a key other than
the one answered: the misconfigured border element a key-mismatch drill needs.
"""
from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from harness.sip.endpoint import bad_input
from harness.sip import srtp as sdes
from harness.sip.sdp import audio_profile, inactive, media_address, rewrite_media, with_crypto

UNANSWERED = 32.0  # 64 * T1: an offer never answered is given up
IDLE = 120.0       # no packet and no signalling for this long: the call is gone
BATCH = 64         # datagrams read per wake-up of one socket, so one busy call cannot starve others

Send = Callable[[bytes], None]
Forward = Callable[[str, bytes, Send], None]


def send_now(stream: str, data: bytes, send: Send) -> None:
    send(data)


@dataclass
class Session:
    call_id: str
    caller_sock: socket.socket   # the caller side sends here
    hotline_sock: socket.socket  # the hotline side sends here
    caller_media: tuple[str, int] | None = None
    hotline_media: tuple[str, int] | None = None
    created: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    srtp: sdes.SrtpContext | None = None   # SRTP on the caller side (the anchor ends it)
    offered: sdes.Crypto | None = None     # the caller's key it was made for
    answer_crypto: sdes.Crypto | None = None
    savp: bool = False                     # the offer was RTP/SAVP


class MediaAnchor:
    def __init__(self, caller_ip: str, hotline_ip: str, forward: Forward = send_now,
                 max_sessions: int = 4000, srtp: bool = False, wrong_key: bool = False):
        self.caller_ip, self.hotline_ip = caller_ip, hotline_ip
        self.forward = forward
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}
        self.srtp, self.wrong_key = srtp, wrong_key
        self.srtp_counts = {"calls": 0, "auth_failed": 0}  # over ended sessions

    # -- signalling ------------------------------------------------------------
    def offer(self, call_id: str, body: bytes) -> bytes:
        """The SDP of an INVITE from the caller side, rewritten to point at us."""
        remote = media_address(body)
        if remote is None or inactive(body):
            return body  # nothing to anchor: no address, or no media will flow
        s = self.sessions.get(call_id) or self._open(call_id)
        if s is None:
            return body
        s.caller_media, s.last = remote, time.monotonic()
        body = rewrite_media(body, *s.hotline_sock.getsockname())
        return self._end_srtp(s, body) if self.srtp else body

    def _end_srtp(self, s: Session, body: bytes) -> bytes:
        """An offer with a key we take goes on in the clear; one without, unchanged."""
        taken = sdes.answer(sdes.parse(body))
        if taken is None:
            return body
        theirs, ours = taken
        if s.srtp is None or s.offered != theirs:  # (a retransmission keeps its keys)
            s.offered, s.answer_crypto = theirs, ours
            sending = sdes.Crypto.fresh(ours.tag, ours.suite) if self.wrong_key else ours
            s.srtp = sdes.SrtpContext(sending, theirs)
            s.savp = audio_profile(body) == "RTP/SAVP"
        return with_crypto(body, [], "RTP/AVP")

    def answer(self, call_id: str, body: bytes) -> bytes:
        """The SDP of a 2xx from the hotline side, rewritten to point at us."""
        s = self.sessions.get(call_id)
        remote = media_address(body)
        if s is None or remote is None:
            return body
        s.hotline_media, s.last = remote, time.monotonic()
        body = rewrite_media(body, *s.caller_sock.getsockname())
        if s.answer_crypto is not None:
            body = with_crypto(body, [s.answer_crypto.attribute()],
                               "RTP/SAVP" if s.savp else "RTP/AVP")
        return body

    def end(self, call_id: str) -> None:
        s = self.sessions.pop(call_id, None)
        if s is not None:
            self._close(s)

    def _open(self, call_id: str) -> Session | None:
        if len(self.sessions) >= self.max_sessions:
            bad_input("offer", call_id[:40], RuntimeError(
                f"{self.max_sessions} calls anchored already: this one's media goes direct"))
            return None
        socks = []
        try:
            for ip in (self.caller_ip, self.hotline_ip):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((ip, 0))
                sock.setblocking(False)
        except OSError as exc:  # out of descriptors or ports: this call's media goes direct
            for sock in socks:
                sock.close()
            bad_input("offer", call_id[:40], exc)  # this call's media goes direct
            return None
        s = Session(call_id, socks[0], socks[1])
        loop = asyncio.get_running_loop()
        loop.add_reader(s.caller_sock.fileno(), self._readable, s, "upstream")
        loop.add_reader(s.hotline_sock.fileno(), self._readable, s, "downstream")
        self.sessions[call_id] = s
        return s

    def _close(self, s: Session) -> None:
        if s.srtp is not None:
            self.srtp_counts["calls"] += 1
            self.srtp_counts["auth_failed"] += s.srtp.auth_failed
        loop = asyncio.get_running_loop()
        for sock in (s.caller_sock, s.hotline_sock):
            loop.remove_reader(sock.fileno())
            sock.close()

    # -- media -----------------------------------------------------------------
    def _readable(self, s: Session, stream: str) -> None:
        src, dst = (s.caller_sock, s.hotline_sock) if stream == "upstream" \
            else (s.hotline_sock, s.caller_sock)
        to = s.hotline_media if stream == "upstream" else s.caller_media
        if to is not None:
            def send(d: bytes) -> None:
                _send(dst, d, to)
        for _ in range(BATCH):
            try:
                data = src.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP unreachable from a far end that went away
                continue
            s.last = time.monotonic()
            if s.srtp is not None:  # caller side SRTP, hotline side in the clear
                data = s.srtp.unprotect(data) if stream == "upstream" else s.srtp.protect(data)
                if data is None:  # failed authentication (counted), or a duplicate
                    continue
            if to is not None:  # else no answer yet: nowhere to send it
                self.forward(stream, data, send)

    def expire(self, now: float | None = None) -> int:
        """Close sessions never answered within 64*T1 or idle too long; how many closed."""
        now = time.monotonic() if now is None else now
        gone = [s for s in self.sessions.values()
                if (s.hotline_media is None and now - s.created > UNANSWERED)
                or now - s.last > IDLE]
        for s in gone:
            self.end(s.call_id)
        return len(gone)

    async def expire_forever(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            self.expire()

    def close(self) -> None:
        for call_id in list(self.sessions):
            self.end(call_id)


def _send(sock: socket.socket, data: bytes, to: tuple[str, int]) -> None:
    try:
        sock.sendto(data, to)
    except OSError:  # closed meanwhile (a late, delayed packet) or unreachable: dropped
        pass
