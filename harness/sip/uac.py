"""One SIP call from the caller's side: INVITE, ACK, RTP for the hold time, BYE.

Blocking sockets with timeouts, one UDP socket per call for signalling and one
for media. Under Locust these calls run in gevent greenlets (Locust patches the
socket module), elsewhere in plain threads: the same code serves both. The
RTP of every call is sent and read by one media pump per process
(media_pump.py), not by the call's own greenlet.
"""
from __future__ import annotations

import _socket
import random
import socket
import time
from dataclasses import dataclass, field, replace

from harness.metrics.records import CallRecord
from harness.sip.arrival import receive as receive_stamped, stamp_arrivals
from harness.sip import rtp
from harness.sip.media_pump import MediaStream, stream_rtp
from harness.sip.framing import split_stream
from harness.sip.message import (SipMessage, SipParseError, host_port, local_ip_for,
                                 new_branch, parse, response_to, token, uri_of,
                                 via_address)
from harness.sip.sdp import media_address

T1 = 0.5
HEALTH_CALL_PREFIX = "hd-health-"  # Call-IDs of the steady-state check's test calls


@dataclass
class CallOptions:
    """What one call does; the defaults suit a drill (shorter than RFC timers)."""

    hold: float = 10.0
    rtp: bool = True
    invite_timeout: float = 8.0
    bye_timeout: float = 4.0
    callee: str = "hotline"
    local_ip: str | None = None  # None: our address on the route to the entry point
    max_media_gap: float = 1.0
    transport: str = "udp"  # or "tcp": one connection to the entry point carries the dialog
    # ACK, BYE and re-INVITEs go to the entry point whatever Record-Route and Contact say, as a
    # carrier trunk facing a B2BUA SBC does (the Request-URI and Route headers are unchanged)
    outbound_proxy: bool = False
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    call_id_prefix: str = ""  # e.g. the health check's, so a truth check can tell its calls apart
    # further addresses of the same path (another site's SBC), tried in order as a carrier's
    # trunk does (RFC 3263 §4.3): when the one before gives no response at all within
    # failover_timer, cannot be reached, or answers 503. A server that sent any response
    # has the call: it is not left for the next (a 100 Trying ends the failover timer)
    fallback: tuple[tuple[str, int], ...] = ()
    failover_timer: float = 2.0


def _sdp(ip: str, port: int, session_id: int, media: bool = True) -> bytes:
    """Our offer; a signalling-only call says so (RFC 4566 a=inactive), so no far end, SBC
    or relay spends anything on a stream nobody will listen to."""
    return (f"v=0\r\no=drill {session_id} {session_id} IN IP4 {ip}\r\ns=drill\r\n"
            f"c=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
            f"a=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
            f"a={'sendrecv' if media else 'inactive'}\r\n").encode()


class _Leg:
    """The signalling socket of one call and the dialog state learned on it."""

    def __init__(self, opts: CallOptions, entry: tuple[str, int], call_id: str | None = None):
        self.opts = opts
        self.entry = entry
        self.tcp = opts.transport == "tcp"
        self.buf = b""
        self.buf_arrival = 0.0  # when the bytes that completed the next framed message came
        self.closed = False  # TCP: the peer closed the connection
        if self.tcp:
            self.sock = socket.create_connection(entry, timeout=opts.invite_timeout,
                                                 source_address=(opts.local_ip, 0))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((opts.local_ip, 0))
        stamp_arrivals(self.sock)  # responses are timed when they arrive, not when read
        self.port = self.sock.getsockname()[1]
        self.call_id = call_id or f"{opts.call_id_prefix}{token(16)}@{opts.local_ip}"
        self.heard = False  # any response to our request came on this leg
        self.from_tag = token(8)
        self.to_header = f"<sip:{opts.callee}@{entry[0]}:{entry[1]}>"
        self.route_set: list[str] = []
        self.remote_target = f"sip:{opts.callee}@{entry[0]}:{entry[1]}"

    def request(self, method: str, cseq: int, branch: str, body: bytes = b"",
                uri: str | None = None) -> SipMessage:
        o = self.opts
        msg = SipMessage(method=method, uri=uri or self.remote_target)
        msg.headers = [
            ("Via", f"SIP/2.0/{'TCP' if self.tcp else 'UDP'} {o.local_ip}:{self.port};"
                    f"branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:drill@{o.local_ip}:{self.port}>;tag={self.from_tag}"),
            ("To", self.to_header),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:drill@{o.local_ip}:{self.port}"
                        f"{';transport=tcp' if self.tcp else ''}>"),
            ("User-Agent", "hotline-drill"),
        ]
        msg.headers += [("Route", r) for r in self.route_set]
        msg.headers += o.extra_headers
        if body:
            msg.headers.append(("Content-Type", "application/sdp"))
        msg.body = body
        return msg

    def next_hop(self) -> tuple[str, int]:
        """RFC 3261 §12.2.1.1: the first route, else the remote target (the entry before a dialog)."""
        if self.opts.outbound_proxy:
            return self.entry
        if self.route_set:
            return host_port(uri_of(self.route_set[0]))
        return host_port(self.remote_target)

    def send(self, msg: SipMessage, dest: tuple[str, int] | None = None) -> None:
        if self.tcp:
            self.sock.sendall(msg.to_bytes())
        else:
            self.sock.sendto(msg.to_bytes(), dest or self.next_hop())

    def _read(self, left: float) -> tuple[bytes, float]:
        """One UDP datagram, or one framed message from the TCP stream, and when it arrived."""
        self.sock.settimeout(left)
        if not self.tcp:
            data, _, arrival = receive_stamped(self.sock)
            return data, arrival
        while True:
            messages, rest = split_stream(self.buf)
            if messages:
                self.buf = rest + b"".join(messages[1:])
                return messages[0], self.buf_arrival
            chunk, _, self.buf_arrival = receive_stamped(self.sock)
            if not chunk:
                raise ConnectionResetError("peer closed the connection")
            self.buf += chunk

    def receive(self, deadline: float) -> SipMessage | None:
        """The next SIP message on this socket, or None when the deadline passes."""
        while True:
            left = deadline - time.time()
            if left <= 0 or self.closed:
                return None
            try:
                data, arrival = self._read(left)
            except (socket.timeout, ConnectionRefusedError):
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True  # never spin on a dead connection: it would starve the others
                return None
            try:
                msg = parse(data)
            except SipParseError:
                continue
            msg.received_at = arrival
            return msg

    def transact(self, msg: SipMessage, timeout: float, on_provisional=None,
                 first_response_within: float | None = None):
        """Send a request with UDP retransmission (timer A/E) until a final response; None at
        the timeout, or when nothing at all answered within first_response_within."""
        start = time.time()
        deadline = start + timeout
        give_up = deadline if first_response_within is None \
            else min(deadline, start + first_response_within)
        interval, next_send, provisional = T1, start, False
        self.heard = False
        while True:
            now = time.time()
            if not provisional and now >= next_send:
                self.send(msg)
                # a reliable transport sends once (RFC 3261 §17.1.1.2)
                next_send = now + interval if not self.tcp else deadline
                interval = min(interval * 2, 4.0)
            resp = self.receive(min(give_up, next_send) if not provisional else give_up)
            if resp is None:
                if time.time() >= give_up or self.closed:
                    return None
                continue
            if resp.is_request or resp.cseq != msg.cseq:
                continue
            self.heard, give_up = True, deadline
            if resp.status < 200:
                provisional = True
                if on_provisional:
                    on_provisional(resp)
                continue
            return resp

    def close(self) -> None:
        self.sock.close()


class HeldCall:
    """An answered call in its hold: all its end needs (BYE, media figures, sockets).

    The hold needs no greenlet or thread of its own: the media pump carries the RTP,
    and whoever holds this object ends the call when `end` comes (end_call). A drill's
    load controller hands it to a timer, so a held call costs its state, not a stack."""

    __slots__ = ("leg", "media_sock", "rec", "stream", "end")

    def __init__(self, leg: _Leg, media_sock, rec: CallRecord, stream: MediaStream | None,
                 end: float):
        self.leg, self.media_sock, self.rec, self.stream, self.end = leg, media_sock, rec, stream, end

    def close(self) -> None:
        """Give up the call without a BYE (an aborted run): its sockets and media stop."""
        if self.stream is not None:
            self.stream.stop()
        self.media_sock.close()
        self.leg.close()


def place_call(entry: tuple[str, int], opts: CallOptions, carrier: str = "",
               node_of=lambda contact: contact) -> CallRecord:
    """Place one call through `entry`, hold it, end it; what happened to it (never raises for I/O)."""
    rec, held = start_call(entry, opts, carrier, node_of)
    if held is None:
        return rec
    time.sleep(max(0.0, held.end - time.time()))
    return end_call(held)


def start_call(entry: tuple[str, int], opts: CallOptions, carrier: str = "",
               node_of=lambda contact: contact) -> tuple[CallRecord, HeldCall | None]:
    """INVITE to ACK: the record of a call that was not answered, or the record and the
    answered call in its hold (its RTP, if any, already with the media pump). With fallback
    addresses, the same call (same Call-ID) goes to the next when one gives up on it."""
    started = time.time()
    if opts.local_ip is None:
        opts = replace(opts, local_ip=local_ip_for(entry[0]))
    rec = CallRecord(call_id=f"{opts.call_id_prefix}{token(16)}@{opts.local_ip}", carrier=carrier,
                     hold_planned=opts.hold, media=opts.rtp)
    # the C socket, not gevent's: only the media pump uses it, and only without blocking
    media_sock = _socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held = None
    addresses = [entry, *opts.fallback]
    try:
        media_sock.bind((opts.local_ip, 0))
        stamp_arrivals(media_sock)
        for i, address in enumerate(addresses):
            last = i == len(addresses) - 1
            if i:
                rec.failovers += 1
                rec.outcome, rec.status, rec.reason, rec.ended_at = "failed", 0, "", None
            rec.entry_address = f"{address[0]}:{address[1]}"
            held, next_one = _attempt(address, rec, media_sock, opts, node_of, last, started)
            if held is not None or not next_one:
                break
    finally:
        if held is None:
            media_sock.close()
    if held is None and rec.failovers:
        rec.reason = f"{rec.reason} (after {rec.failovers} failover(s))"
    return rec, held


def _attempt(address: tuple[str, int], rec: CallRecord, media_sock, opts: CallOptions,
             node_of, last: bool, started: float) -> tuple[HeldCall | None, bool]:
    """One address's try at the call: (the held call or None, whether the next may try)."""
    try:
        leg = _Leg(opts, address, rec.call_id)
    except OSError as exc:  # e.g. TCP connection refused: this address cannot be reached
        rec.started_at = rec.started_at or started
        rec.fail(0, f"cannot connect to {address[0]}:{address[1]}: {exc.strerror or exc}")
        return None, True
    held = None
    try:
        held = _invite(leg, rec, media_sock, opts, node_of,
                       None if last else opts.failover_timer)
    except OSError as exc:  # the connection broke mid-call
        _lost(rec, exc, started)
    finally:
        if held is None:
            leg.close()
    return held, held is None and (rec.status == 503 or (rec.status == 0 and not leg.heard))


def end_call(held: HeldCall) -> CallRecord:
    """After the hold: the far end's BYE if it hung up, else ours; the media figures."""
    rec = held.rec
    try:
        _bye(held)
    except OSError as exc:  # the connection broke at the end of the call
        _lost(rec, exc, rec.started_at)
    finally:
        held.close()
    return rec


def _lost(rec: CallRecord, exc: OSError, started: float) -> None:
    rec.started_at = rec.started_at or started
    if rec.answered:
        rec.outcome, rec.reason, rec.ended_at = "dropped", f"connection lost: {exc}", time.time()
    else:
        rec.fail(0, f"connection lost: {exc}")


def _invite(leg: _Leg, rec: CallRecord, media_sock, opts: CallOptions,
            node_of, failover_timer: float | None = None) -> HeldCall | None:
    sdp = _sdp(opts.local_ip, media_sock.getsockname()[1], random.randrange(1, 2**31), opts.rtp)
    invite = leg.request("INVITE", 1, new_branch(), sdp)

    def provisional(resp: SipMessage) -> None:
        if resp.status in (180, 183) and rec.ringing_at is None:
            rec.ringing_at = resp.received_at or time.time()

    rec.started_at = rec.started_at or time.time()  # a failover's call began with its first INVITE
    final = leg.transact(invite, opts.invite_timeout, provisional, failover_timer)
    if final is None:
        rec.fail(0, "connection closed by the peer" if leg.closed
                 else "no final response to INVITE (timeout)" if leg.heard or failover_timer is None
                 else f"no response to INVITE within the failover timer ({failover_timer:g} s)")
        return None
    rec.status = final.status
    if final.status >= 300:
        _ack(leg, invite, final, non_2xx=True)
        rec.fail(final.status, f"{final.status} {final.reason}")
        return None
    rec.answered_at = final.received_at or time.time()
    contact = uri_of(final.get("contact", "") or "")
    rec.node = node_of(contact)
    leg.to_header = final.get("to", leg.to_header) or leg.to_header
    leg.route_set = list(final.get_all("record-route"))[::-1]
    leg.remote_target = contact or leg.remote_target
    rec.dialog_via = "outbound_proxy" if opts.outbound_proxy else \
        ("record_route" if leg.route_set else "contact")
    _ack(leg, invite, final, non_2xx=False)
    end = time.time() + opts.hold
    remote = media_address(final.body)
    stream = stream_rtp(media_sock, remote, rec, end) if opts.rtp and remote is not None else None
    return HeldCall(leg, media_sock, rec, stream, end)


def _bye(held: HeldCall) -> None:
    leg, rec, stream = held.leg, held.rec, held.stream
    if stream is not None:
        stream.done.wait(5.0)  # its last read and its figures (the pump finishes it at `end`)
    hung_up = _far_end_bye(leg)
    if hung_up is not None:  # the far end ended the call during the hold: no BYE of ours
        rec.outcome, rec.reason, rec.ended_at = "dropped", "remote hung up", hung_up
    else:
        bye = leg.request("BYE", 2, new_branch())
        rec.bye_sent_at = time.time()
        resp = leg.transact(bye, leg.opts.bye_timeout)
        rec.ended_at = resp.received_at if resp and resp.received_at else time.time()
        rec.bye_status = resp.status if resp else 0
        rec.outcome = "completed" if rec.bye_status == 200 else "dropped"
        if rec.bye_status != 200:
            rec.reason = "BYE got no answer" if not resp else f"BYE got {resp.status}"
    if stream is not None:
        stats = stream.stats
        if hung_up is not None:  # no media was due after the far end hung up
            rec.rtp_expected = min(rec.rtp_expected,
                                   int(round((hung_up - stream.start) / rtp.PACKET_INTERVAL)))
        stats.close(hung_up or rec.bye_sent_at)
        rec.rtp_expected = max(stats.expected, rec.rtp_expected)
        rec.rtp_received = stats.received
        rec.rtp_jitter_ms = round(stats.jitter * 1000, 3)
        rec.rtp_max_gap = round(stats.max_gap, 3)
        rec.rtp_bursts = stats.bursts


def _far_end_bye(leg: _Leg) -> float | None:
    """When the far end's BYE came, if one waits on the dialog (answered 200 OK); else None."""
    try:
        return _read_far_end_bye(leg)
    finally:
        leg.sock.settimeout(leg.opts.bye_timeout)  # reads without waiting are over: our BYE next


def _read_far_end_bye(leg: _Leg) -> float | None:
    while True:
        try:
            data, arrival = leg._read(0.0)
        except (BlockingIOError, InterruptedError, socket.timeout, ConnectionRefusedError):
            return None
        except (ConnectionResetError, BrokenPipeError):
            leg.closed = True
            return None
        try:
            msg = parse(data)
        except SipParseError:
            continue
        if msg.is_request and msg.method == "BYE" and msg.call_id == leg.call_id:
            try:
                leg.send(response_to(msg, 200), None if leg.tcp else via_address(msg.top_via))
            except ValueError:  # a Via we cannot answer: the far end retransmits, then gives up
                pass
            return arrival


def _ack(leg: _Leg, invite: SipMessage, final: SipMessage, non_2xx: bool) -> None:
    """ACK: same branch for a non-2xx (hop by hop), new branch and route set for 2xx."""
    if non_2xx:
        ack = leg.request("ACK", 1, invite.branch, uri=invite.uri)
        ack.set("To", final.get("to", leg.to_header) or leg.to_header)
        ack.remove("Route")
        leg.send(ack, leg.entry)
    else:
        leg.send(leg.request("ACK", 1, new_branch()))
