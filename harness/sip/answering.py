"""A SIP node that answers calls (100, 180, 200 + SDP), sends G.711 RTP and honours BYE and
CANCEL: the sandbox PBX (lab/pbx.py runs it as its own process), the sandbox contact centre
(lab/acd.py) and the agents' phones' desk (load/agent_desk.py) are each one.

One 20 ms ticker sends a packet to every active call, so media cost grows
with calls, not with timers. Each packet carries a receiver report of the
caller's stream (rtp.py): how much of it arrived, in how many loss bursts, and
the caller's latest send stamp with how long it was held here, so the caller
measures both directions and the round-trip time, as RTCP would let it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from dataclasses import dataclass, field

from harness.sip.endpoint import SipUdp
from harness.sip import rtp
from harness.sip.arrival import receive, stamp_arrivals
from harness.sip.message import SipMessage, host_port, new_branch, response_to, token, uri_of
from harness.sip.dtmf import EventReader, event_payload
from harness.sip.sdp import TELEPHONE_EVENT, Audio, inactive, media_address

log = logging.getLogger("pbx")
NO_ACK_GIVE_UP = 32.0  # 64 * T1: a 200 never ACKed is given up


@dataclass
class Call:
    call_id: str
    to_tag: str
    media_sock: socket.socket
    remote_media: tuple[str, int] | None
    final: SipMessage
    client: tuple
    invite: SipMessage | None = None  # the caller's INVITE: the route and target of our BYE
    acked: bool = False
    seq: int = field(default_factory=lambda: random.randrange(65536))
    ts: int = 0
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    heard: rtp.RtpStats = field(default_factory=rtp.RtpStats)  # the caller's stream, as received
    events: EventReader = field(default_factory=EventReader)  # the caller's RFC 4733 keys
    # packets to send, one a tick: RFC 4733 events as (marker, Event, ts), or audio payloads
    outbox: list = field(default_factory=list)
    last_sent_ns: int = 0     # the send stamp in the caller's latest packet
    last_arrival: float = 0.0  # when that packet arrived (kernel stamp)

    def report(self, now: float) -> bytes:
        held = int((now - self.last_arrival) * 1e6) if self.last_sent_ns else 0
        return rtp.report_payload(rtp.Report(self.last_sent_ns, max(0, held), self.heard.received,
                                             self.heard.expected, self.heard.bursts))

    def drain(self) -> None:
        """Read what the caller sent since the last tick, into the receiver report."""
        for _ in range(256):
            try:
                data, _, arrival = receive(self.media_sock, 2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            hdr = rtp.parse_header(data)
            if hdr is None:
                continue
            self.heard.add(hdr[0], hdr[1], arrival)
            if data[1] & 0x7F == TELEPHONE_EVENT[0]:  # a key the caller pressed
                self.events.add(hdr[1], data[rtp.HEADER.size:], arrival)
                continue
            sent = rtp.sent_stamp(data[rtp.HEADER.size:])
            if sent is not None and sent >= self.last_sent_ns:
                self.last_sent_ns, self.last_arrival = sent, arrival


class PbxNode:
    def __init__(self, name: str, ip: str, port: int, ring_delay: float, answer_delay: float,
                 stats_file: str | None, channels: int | None = None, contact: str | None = None,
                 drop_record_route: bool = False, answer_cancelled: bool = False):
        self.name, self.ip, self.port = name, ip, port
        self.channels = channels  # calls it can hold at once (a licence or trunk limit); None: no limit
        self.ringing: set[str] = set()
        self.cancelled: set[str] = set()  # rang, and the caller gave up: never answered
        self.ring_delay, self.answer_delay = ring_delay, answer_delay
        self.calls: dict[str, Call] = {}
        self.ended: dict[str, SipMessage] = {}
        self.proto = SipUdp(self.handle)
        self.counts = {"invites": 0, "answered": 0, "byes": 0, "rejected": 0}
        self.stats_file = stats_file
        self.contact = contact or f"{ip}:{port}"  # what its 200 advertises
        self.drop_record_route = drop_record_route  # a PBX that strips Record-Route (a broken one)
        self.answer_cancelled = answer_cancelled  # its 200 crosses every CANCEL (a late answer)

    async def start(self):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.proto, local_addr=(self.ip, self.port))
        asyncio.create_task(self._media_ticker())
        log.info("%s listening on %s:%d", self.name, self.ip, self.port)
        return self

    def close(self):
        self._write_stats()
        for call in self.calls.values():
            call.media_sock.close()

    def _write_stats(self):
        if self.stats_file:
            with open(self.stats_file, "w") as fh:
                json.dump({"node": self.name, **self.counts, "active": len(self.calls)}, fh)

    def handle(self, msg: SipMessage, addr) -> None:
        if not msg.is_request:
            return
        if msg.method == "OPTIONS":
            self.proto.send(response_to(msg, 200), addr)
        elif msg.method == "INVITE":
            self._invite(msg, addr)
        elif msg.method == "ACK":
            call = self.calls.get(msg.call_id)
            if call and not call.acked:
                call.acked = True
                self.acked(call)
        elif msg.method == "BYE":
            self._bye(msg, addr)
        elif msg.method == "CANCEL":
            self._cancel(msg, addr)
        else:
            self.proto.send(response_to(msg, 501, "Not Implemented"), addr)

    def _invite(self, msg: SipMessage, addr) -> None:
        existing = self.calls.get(msg.call_id)
        if existing:  # retransmission: repeat the final answer
            self.proto.send(existing.final, addr)
            return
        if msg.call_id in self.ringing:  # retransmission while it rings: Trying again
            self.proto.send(response_to(msg, 100), addr)
            return
        self.counts["invites"] += 1
        if self.channels is not None and len(self.calls) + len(self.ringing) >= self.channels:
            self.counts["rejected"] += 1  # all channels busy: the SBC may try another node
            self.proto.send(response_to(msg, 503, "All Channels Busy"), addr)
            return
        self.ringing.add(msg.call_id)
        self.proto.send(response_to(msg, 100), addr)
        asyncio.get_running_loop().create_task(self._answer(msg, addr))

    async def _answer(self, msg: SipMessage, addr) -> None:
        to_tag = token(8)
        try:
            await asyncio.sleep(self.ring_delay)
            self.proto.send(response_to(msg, 180, to_tag=to_tag), addr)
            await asyncio.sleep(self.answer_delay)
        finally:
            self.ringing.discard(msg.call_id)
        if msg.call_id in self.cancelled:
            self.cancelled.discard(msg.call_id)
            return
        try:
            media_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:  # out of descriptors (a flood of INVITEs): busy, not broken
            self.counts["no_descriptor"] = self.counts.get("no_descriptor", 0) + 1
            self.proto.send(response_to(msg, 503, "Service Unavailable", to_tag=to_tag), addr)
            return
        media_sock.bind((self.ip, 0))
        media_sock.setblocking(False)
        stamp_arrivals(media_sock)
        mport = media_sock.getsockname()[1]
        ok = response_to(msg, 200, to_tag=to_tag)
        if self.drop_record_route:
            ok.remove("Record-Route")
        ok.headers.append(("Contact", f"<sip:{self.contact_user(msg)}@{self.contact}>"))
        ok.headers.append(("Content-Type", "application/sdp"))
        sid = random.randrange(1, 2**31)
        ok.body = self.answer_sdp(mport, sid)
        # an offer marked inactive (a signalling-only caller) gets no stream from us
        remote = None if inactive(msg.body) else media_address(msg.body)
        call = Call(msg.call_id, to_tag, media_sock, remote, ok, addr, invite=msg)
        self.calls[msg.call_id] = call
        self.counts["answered"] += 1
        self.took(call)
        self.proto.send(ok, addr)
        for delay in (0.5, 1.0, 2.0, 4.0):  # timer G until ACK
            await asyncio.sleep(delay)
            if call.acked or msg.call_id not in self.calls:
                return
            self.proto.send(ok, addr)
        await asyncio.sleep(NO_ACK_GIVE_UP - 7.5)
        if not call.acked and self.calls.get(msg.call_id) is call:
            # RFC 3261 §13.3.1.4: no ACK within 64*T1, the dialog ends; its socket is freed
            del self.calls[msg.call_id]
            call.media_sock.close()
            self.counts["never_acked"] = self.counts.get("never_acked", 0) + 1

    def _cancel(self, cancel: SipMessage, addr) -> None:
        """RFC 3261 §9.2: 200 to the CANCEL; an INVITE still ringing gets 487 and is never
        answered (one already answered goes on: the caller ends it with a BYE)."""
        self.proto.send(response_to(cancel, 200), addr)
        if self.answer_cancelled:
            return
        if cancel.call_id in self.ringing and cancel.call_id not in self.cancelled:
            self.cancelled.add(cancel.call_id)
            invite = SipMessage(method="INVITE", uri=cancel.uri, headers=list(cancel.headers))
            invite.set("CSeq", f"{cancel.cseq[0]} INVITE")
            self.proto.send(response_to(invite, 487, "Request Terminated", to_tag=token(8)), addr)
            self.rang_out(cancel.call_id)

    def rang_out(self, call_id: str) -> None:
        """A call that rang here was cancelled before it was answered."""

    def contact_user(self, invite: SipMessage) -> str:
        """The user part of the Contact our 200 names (the node; an agent's desk: the agent)."""
        return self.name

    def answer_sdp(self, media_port: int, session_id: int) -> bytes:
        return Audio(self.ip, media_port, session_id, origin=self.name, session_name="pbx",
                     direction=None).encode()

    def took(self, call: Call) -> None:
        """This node answered the call (its 200 goes now)."""

    def acked(self, call: Call) -> None:
        """The caller's ACK came: the call is up (a contact centre starts its IVR here)."""

    def hung_up(self, call: Call) -> None:
        """The caller's BYE came, before the call is forgotten."""

    def tick(self, now: float) -> None:
        """Once per packet time, before the packets go (a contact centre's queues)."""

    def idle_payload(self, call: Call) -> bytes:
        """What a tick with no event to send carries: a receiver report (a contact centre's
        queue plays music instead)."""
        return call.report(time.time())

    def hang_up(self, call: Call) -> None:
        """This side ends the call (an agent hanging up): a BYE to the caller's Contact along
        the INVITE's Record-Route (the SBC), sent once; the call is forgotten at once."""
        inv = call.invite
        routes = inv.get_all("record-route")  # a UAS's route set: in the order received
        target = uri_of(inv.get("contact", "") or "") or inv.uri
        dest = host_port(uri_of(routes[0])) if routes else host_port(target)
        bye = SipMessage(method="BYE", uri=target)
        bye.headers = [("Via", self.via()),
                       ("Max-Forwards", "70"), *[("Route", r) for r in routes],
                       ("From", f"{inv.get('to')};tag={call.to_tag}"), ("To", inv.get("from")),
                       ("Call-ID", call.call_id), ("CSeq", "1 BYE"), ("Content-Length", "0")]
        self.calls.pop(call.call_id, None)
        call.media_sock.close()
        self.counts["hung_up"] = self.counts.get("hung_up", 0) + 1
        self.proto.send(bye, dest)

    def via(self) -> str:
        """The Via of a request this node sends itself (a new transaction)."""
        return f"SIP/2.0/UDP {self.ip}:{self.port};branch={new_branch()}"

    def _bye(self, msg: SipMessage, addr) -> None:
        call = self.calls.get(msg.call_id)
        if call is not None:
            self.hung_up(call)
        call = self.calls.pop(msg.call_id, None)
        if call is None:
            done = self.ended.get(msg.call_id)
            self.proto.send(done if done else response_to(msg, 481), addr)
            return
        call.media_sock.close()
        ok = response_to(msg, 200)
        self.ended[msg.call_id] = ok
        if len(self.ended) > 5000:
            self.ended.pop(next(iter(self.ended)))
        self.counts["byes"] += 1
        self.proto.send(ok, addr)

    async def _media_ticker(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += rtp.PACKET_INTERVAL
            for call in list(self.calls.values()):
                if call.remote_media is not None:
                    call.drain()
            self.tick(time.time())
            for call in list(self.calls.values()):
                if call.remote_media is None:
                    continue
                try:
                    for packet in self._packets(call):
                        call.media_sock.sendto(packet, call.remote_media)
                except (OSError, OverflowError, ValueError):
                    pass  # a caller gone, or a media address no socket takes: this call only
                call.seq, call.ts = call.seq + 1, call.ts + rtp.SAMPLES_PER_PACKET
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    def _packets(self, call: Call) -> list[bytes]:
        """This tick's packet for a call: its next event (RFC 4733; the end three times), or
        a receiver report. Either takes the call's next number."""
        if not call.outbox:
            return [rtp.build_packet(call.seq, call.ts, call.ssrc, self.idle_payload(call))]
        if isinstance(call.outbox[0], bytes):  # audio (an in-band tone), in the call's time
            return [rtp.build_packet(call.seq, call.ts, call.ssrc, call.outbox.pop(0))]
        marker, event, start_ts = call.outbox.pop(0)
        packet = rtp.build_packet(call.seq, start_ts, call.ssrc, event_payload(event), marker,
                                  TELEPHONE_EVENT[0])
        if event.end:
            del call.outbox[:2]  # its two copies go now, with the same number
            return [packet] * 3
        return [packet]
