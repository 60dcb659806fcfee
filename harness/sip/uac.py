"""One SIP call from the caller's side: INVITE, ACK, RTP for the hold time, BYE.

The call's story only: sockets are the transport's (transport.py), retransmission and
the ACK of a failure the client transaction's (transaction.py), CSeq, routes and the
answer to a challenge the dialog's (dialog.py), the offer the SDP module's (sdp.py).
Blocking sockets with timeouts: under Locust these calls run in gevent greenlets
(Locust patches the socket module), elsewhere in plain threads, the same code for both.
The RTP of every call is sent and read by one media pump per process (media_pump.py),
not by the call's own greenlet.
"""
from __future__ import annotations

import _socket
import random
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from harness.metrics.records import CallRecord
from harness.sip import dtmf, rtp, srtp
from harness.sip.arrival import stamp_arrivals
from harness.sip.dialog import CHALLENGES, Dialog
from harness.sip.digest import Credential, DigestCredentials
from harness.sip.media_pump import MediaStream, stream_rtp
from harness.sip.message import SipMessage, local_ip_for, token
from harness.sip.sdp import EVENTS_FMTP, PCMU, TELEPHONE_EVENT, Audio, event_payload_type, \
    media_address
from harness.sip.transaction import ack_for
from harness.sip.rfc3263 import DnsFailure, Target
from harness.sip.transport import TlsSettings, open_transport
from harness.sip.trunk import trunk
HEALTH_CALL_PREFIX = "hd-health-"  # Call-IDs of the steady-state check's test calls
GIVE_UP_LINGER = 8.0  # s a caller that gave up on an INVITE still ends a late answer


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
    transport: str = "udp"  # or "tcp", "tls": one connection to the entry point carries the dialog
    tls: TlsSettings | None = None  # how a TLS entry point's certificate is checked
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
    # digest credentials (RFC 3261 §22) for the realms that challenge this path's requests
    credentials: tuple[Credential, ...] = ()
    # SRTP with SDES keys (RFC 4568): "off" plain RTP; "offer" RTP/AVP with a=crypto, SRTP when
    # the answer takes a key (best effort); "require" RTP/SAVP, an answer without a key fails
    srtp: str = "off"
    # keys the caller presses: (seconds after the answer, digits), as RFC 4733 events (the
    # answer's payload type) or, with dtmf_inband or a far end that takes no events, as tones
    keys: tuple[tuple[float, str], ...] = ()
    dtmf_inband: bool = False
    # read in-band tones in what the far end sends (G.711 µ-law, Goertzel), beside its
    # RFC 4733 events: a far end whose markers are tones in the audio (costs CPU per call)
    read_tones: bool = False
    # an entry point located by DNS (RFC 3263): called for each call, it gives the targets
    # to try in order and the seconds spent resolving (None: the cache's), or raises
    # DnsFailure (the call fails with cause dns); `fallback` is tried after its targets
    locate: Callable[[], tuple[list[Target], float | None]] | None = None
    dscp: int = 0  # the code point our RTP is marked with (46: EF), for priority queues


class HeldCall:
    """An answered call in its hold: all its end needs (BYE, media figures, sockets).

    The hold needs no greenlet or thread of its own: the media pump carries the RTP,
    and whoever holds this object ends the call when `end` comes (end_call). A drill's
    load controller hands it to a timer, so a held call costs its state, not a stack."""

    __slots__ = ("dialog", "opts", "media_sock", "rec", "stream", "end", "hung_up")

    def __init__(self, dialog: Dialog, opts: CallOptions, media_sock, rec: CallRecord,
                 stream: MediaStream | None, end: float):
        self.dialog, self.opts, self.media_sock = dialog, opts, media_sock
        self.rec, self.stream, self.end = rec, stream, end
        self.hung_up: float | None = None  # the far end's BYE, once seen (and answered)

    def close(self) -> None:
        """Give up the call without a BYE (an aborted run): its sockets and media stop."""
        if self.stream is not None:
            self.stream.stop()
        self.media_sock.close()
        self.dialog.close()


def place_call(entry: tuple[str, int], opts: CallOptions, carrier: str = "",
               node_of=lambda contact: contact) -> CallRecord:
    """Place one call through `entry`, hold it, end it; what happened to it (never raises for I/O)."""
    rec, held = start_call(entry, opts, carrier, node_of)
    if held is None:
        return rec
    time.sleep(max(0.0, held.end - time.time()))
    return end_call(held)


def start_call(entry: tuple[str, int] | None, opts: CallOptions, carrier: str = "",
               node_of=lambda contact: contact) -> tuple[CallRecord, HeldCall | None]:
    """INVITE to ACK: the record of a call that was not answered, or the record and the
    answered call in its hold (its RTP, if any, already with the media pump). With fallback
    addresses, the same call (same Call-ID) goes to the next when one gives up on it. `entry`
    None: the targets come from `opts.locate` (DNS), each with its own transport."""
    started = time.time()
    try:
        targets = _targets(entry, opts)
    except DnsFailure as exc:
        rec = CallRecord(call_id=f"{opts.call_id_prefix}{token(16)}@{opts.local_ip or '-'}",
                         carrier=carrier, hold_planned=opts.hold, media=opts.rtp,
                         callee=opts.callee, started_at=started, cause="dns", dns="failed",
                         dns_ms=round((time.time() - started) * 1000, 3))
        rec.fail(0, f"DNS: {exc}")
        return rec, None
    dns_took = targets.pop()
    if opts.local_ip is None:
        opts = replace(opts, local_ip=local_ip_for(targets[0].host))
    rec = CallRecord(call_id=f"{opts.call_id_prefix}{token(16)}@{opts.local_ip}", carrier=carrier,
                     hold_planned=opts.hold, media=opts.rtp, callee=opts.callee,
                     dns="" if entry is not None else "cache" if dns_took is None else "resolved",
                     dns_ms=None if dns_took is None else round(dns_took * 1000, 3))
    # the C socket, not gevent's: only the media pump uses it, and only without blocking
    media_sock = _socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held = None
    try:
        media_sock.bind((opts.local_ip, 0))
        if opts.dscp:  # the TOS byte's upper six bits (RFC 2474)
            media_sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, opts.dscp << 2)
        stamp_arrivals(media_sock)
        for i, target in enumerate(targets):
            last = i == len(targets) - 1
            if i:
                rec.failovers += 1
                rec.outcome, rec.status, rec.reason, rec.ended_at = "failed", 0, "", None
            rec.entry_address = f"{target.host}:{target.port}"
            rec.entry_target = target.name
            held, next_one = _attempt(target, rec, media_sock, opts, node_of, last, started)
            if held is not None or not next_one:
                break
    finally:
        if held is None:
            media_sock.close()
    if held is None and rec.failovers:
        rec.reason = f"{rec.reason} (after {rec.failovers} failover(s))"
    return rec, held


def _targets(entry: tuple[str, int] | None, opts: CallOptions) -> list:
    """Where to try the call, in order (Targets), then the seconds DNS took (None: none
    asked, or the cache answered) as the last item; DnsFailure when DNS gives nothing."""
    found, took = opts.locate() if entry is None else \
        ([Target(entry[0], entry[1], opts.transport, "")], None)
    return [*found, *(Target(h, p, opts.transport, "") for h, p in opts.fallback), took]


def _attempt(target: Target, rec: CallRecord, media_sock, opts: CallOptions,
             node_of, last: bool, started: float) -> tuple[HeldCall | None, bool]:
    """One address's try at the call: (the held call or None, whether the next may try)."""
    address = (target.host, target.port)
    try:
        if target.transport == "tls" and (opts.tls or TlsSettings()).reuse:
            transport = trunk(address, opts.local_ip, opts.tls).channel(rec.call_id,
                                                                        opts.invite_timeout)
            rec.tls_reused = transport.reused
        else:
            transport = open_transport(target.transport, address, opts.local_ip,
                                       opts.invite_timeout, opts.tls)
    except OSError as exc:  # TCP connection refused, a TLS certificate refused: not reachable
        rec.started_at = rec.started_at or started
        rec.fail(0, f"cannot connect to {address[0]}:{address[1]}: "
                    f"{getattr(exc, 'verify_message', None) or exc.strerror or exc}")
        return None, True
    if transport.handshake is not None:
        rec.tls_handshake_ms = round(transport.handshake * 1000, 3)
    dialog = Dialog(transport, address, callee=opts.callee, call_id=rec.call_id,
                    outbound_proxy=opts.outbound_proxy, extra_headers=opts.extra_headers,
                    challenges=DigestCredentials(list(opts.credentials)))
    held = None
    try:
        held = _invite(dialog, rec, media_sock, opts, node_of,
                       None if last else opts.failover_timer)
    except OSError as exc:  # the connection broke mid-call
        _lost(rec, exc, started)
    finally:
        if held is None and not dialog.lingering:  # (a given-up INVITE's closes when done)
            dialog.close()
    return held, held is None and (rec.status == 503 or (rec.status == 0 and not dialog.heard))


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


def _invite(dialog: Dialog, rec: CallRecord, media_sock, opts: CallOptions,
            node_of, failover_timer: float | None = None) -> HeldCall | None:
    keys = srtp.offer() if opts.rtp and opts.srtp != "off" else []
    sdp = Audio(opts.local_ip, media_sock.getsockname()[1], random.randrange(1, 2**31),
                direction="sendrecv" if opts.rtp else "inactive",
                codecs=(PCMU, TELEPHONE_EVENT) if opts.rtp else (PCMU,),
                attributes=((EVENTS_FMTP,) if opts.rtp else ()) + tuple(k.attribute() for k in keys),
                profile="RTP/SAVP" if keys and opts.srtp == "require" else "RTP/AVP")
    # a signalling-only call says so (RFC 4566 a=inactive), so no far end, SBC or relay
    # spends anything on a stream nobody will listen to

    def provisional(resp: SipMessage) -> None:
        if resp.status in (180, 183) and rec.ringing_at is None:
            rec.ringing_at = resp.received_at or time.time()

    rec.started_at = rec.started_at or time.time()  # a failover's call began with its first INVITE
    dialog.local_sdp = sdp.encode()
    invite, final = dialog.transact(dialog.request("INVITE", dialog.local_sdp), opts.invite_timeout,
                                    provisional, failover_timer)
    if final is None:
        rec.fail(0, "connection closed by the peer" if dialog.closed
                 else "no final response to INVITE (timeout)" if dialog.heard or failover_timer is None
                 else f"no response to INVITE within the failover timer ({failover_timer:g} s)")
        if dialog.heard and not dialog.closed:  # the far end has the call: end it there too
            dialog.lingering = True
            threading.Thread(target=_give_up, args=(dialog, invite, opts), daemon=True,
                             name="invite-give-up").start()
        return None
    rec.status = final.status
    rec.challenged = rec.challenged or dialog.challenged or final.status in CHALLENGES
    if final.status >= 300:  # acknowledged by its transaction
        if final.status in CHALLENGES:
            rec.fail(final.status, f"{final.status} {final.reason} ({dialog.challenges.why()})")
            rec.cause = "auth"
        else:
            rec.fail(final.status, f"{final.status} {final.reason}")
        return None
    rec.answered_at = final.received_at or time.time()
    rec.node = node_of(dialog.confirm(final))
    rec.dialog_via = "outbound_proxy" if opts.outbound_proxy else \
        ("record_route" if dialog.route_set else "contact")
    dialog.ack_2xx(invite)
    pair = srtp.chosen(keys, srtp.parse(final.body)) if keys else None
    if keys and pair is None and opts.srtp == "require":
        _refuse_plain(dialog, rec, opts)
        return None
    end = time.time() + opts.hold
    remote = media_address(final.body)
    stream = None
    if opts.rtp and remote is not None:
        rec.srtp = pair is not None
        presses = [k for delay, digits in opts.keys
                   for k in dtmf.presses(rec.answered_at + delay, digits, inband=opts.dtmf_inband)]
        stream = stream_rtp(media_sock, remote, rec, end,
                            srtp.SrtpContext(*pair) if pair is not None else None,
                            event_payload_type(final.body), presses, opts.read_tones)
    return HeldCall(dialog, opts, media_sock, rec, stream, end)


def _give_up(dialog: Dialog, invite: SipMessage, opts: CallOptions) -> None:
    """RFC 3261 §9.1, §13.2.2.4: a caller that gives up on an INVITE the far end has (it
    answered something) CANCELs it, and a 2xx that still comes (late, or crossing the
    CANCEL) is ACKed and ended with a BYE, so the hotline is not left holding a call no one
    is on until its own timers give up. Beside the caller, for at most GIVE_UP_LINGER s."""
    try:
        cancel = SipMessage(method="CANCEL", uri=invite.uri)
        cancel.headers = [("Via", invite.top_via), ("Max-Forwards", "70"),
                          ("From", invite.get("from", "")), ("To", invite.get("to", "")),
                          ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq[0]} CANCEL"),
                          *(("Route", r) for r in invite.get_all("route"))]
        dialog.send(cancel)
        deadline = time.time() + GIVE_UP_LINGER
        while True:
            msg = dialog.transport.receive(deadline)
            if msg is None:
                return
            if msg.is_request or msg.cseq != invite.cseq or msg.status < 200:
                continue
            if msg.status >= 300:  # 487 Request Terminated: ACKed, the call never was
                dialog.send(ack_for(invite, msg))
                return
            dialog.confirm(msg)
            dialog.ack_2xx(invite)
            dialog.transact(dialog.request("BYE"), opts.bye_timeout)
            return
    except (OSError, ValueError):  # the connection went, an answer we cannot route: done
        pass
    finally:
        dialog.close()


def _refuse_plain(dialog: Dialog, rec: CallRecord, opts: CallOptions) -> None:
    """The far end answered an RTP/SAVP offer without a key it can use: the call is ended at
    once (BYE) and failed, since its audio could only go in the clear or not at all."""
    dialog.transact(dialog.request("BYE"), opts.bye_timeout)
    rec.fail(rec.status, "answered without SRTP (the entry point has srtp: require)")
    rec.cause = "srtp"


def _bye(held: HeldCall) -> None:
    dialog, rec, stream = held.dialog, held.rec, held.stream
    if stream is not None:
        stream.done.wait(5.0)  # its last read and its figures (the pump finishes it at `end`)
    hung_up = held.hung_up or dialog.far_end_bye()
    if hung_up is not None:  # the far end ended the call during the hold: no BYE of ours
        rec.outcome, rec.reason, rec.ended_at = "dropped", "remote hung up", hung_up
    else:
        rec.bye_sent_at = time.time()
        _, resp = dialog.transact(dialog.request("BYE"), held.opts.bye_timeout)
        rec.ended_at = resp.received_at if resp and resp.received_at else time.time()
        rec.bye_status = resp.status if resp else 0
        rec.challenged = rec.challenged or dialog.challenged
        rec.outcome = "completed" if rec.bye_status == 200 else "dropped"
        if rec.bye_status != 200:
            rec.reason = f"BYE got {resp.status}" if resp else \
                "connection closed by the peer (BYE got no answer)" if dialog.closed \
                else "BYE got no answer"
        if rec.bye_status in CHALLENGES:
            rec.reason += f" ({dialog.challenges.why()})"
            rec.cause = "auth"
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
