"""The client transaction (RFC 3261 §17.1): send one request until its final response.

Over UDP the request is retransmitted (timers A and E: T1, doubling, at most T2); over a
reliable transport it is sent once. Provisional responses stop the retransmission. For an
INVITE, a non-2xx final response is acknowledged here, hop by hop (§17.1.1.3): the ACK is
part of the transaction, so whoever reads the final response — the caller, or the
challenge hook that answers a 401/407 with credentials — finds it already acknowledged.
"""
from __future__ import annotations

import time
from typing import Callable

from harness.sip.message import SipMessage
from harness.sip.transport import Transport

T1 = 0.5
T2 = 4.0


class ClientTransaction:
    """One request on one transport, sent to `dest`."""

    def __init__(self, transport: Transport, request: SipMessage, dest: tuple[str, int]):
        self.transport, self.request, self.dest = transport, request, dest
        self.heard = False  # any response at all came (a server has the request)
        self.provisional: SipMessage | None = None

    def run(self, timeout: float, on_provisional: Callable[[SipMessage], None] | None = None,
            first_response_within: float | None = None,
            refused_ends: bool = False) -> SipMessage | None:
        """The final response; None at `timeout`, when the connection closed, or when nothing
        at all answered within `first_response_within` (a failover timer). `refused_ends`: an
        ICMP port unreachable ends it at once (a probe's "no one there"); a call keeps
        retransmitting instead, as a carrier does until its timer fires."""
        t = self.transport
        start = time.time()
        deadline = start + timeout
        give_up = deadline if first_response_within is None \
            else min(deadline, start + first_response_within)
        interval, next_send = T1, start
        while True:
            now = time.time()
            if self.provisional is None and now >= next_send:
                t.send(self.request, self.dest)
                next_send = now + interval if not t.reliable else deadline
                interval = min(interval * 2, T2)
            t.refused = False
            resp = t.receive(min(give_up, next_send) if self.provisional is None else give_up)
            if resp is None:
                if time.time() >= give_up or t.closed or (refused_ends and t.refused):
                    return None
                continue
            if resp.is_request or resp.cseq != self.request.cseq:
                continue
            self.heard, give_up = True, deadline
            if resp.status < 200:
                self.provisional = resp
                if on_provisional:
                    on_provisional(resp)
                continue
            if self.request.method == "INVITE" and resp.status >= 300:
                t.send(self.ack_for(resp), self.dest)
            return resp

    def ack_for(self, final: SipMessage) -> SipMessage:
        return ack_for(self.request, final)


def ack_for(invite: SipMessage, final: SipMessage) -> SipMessage:
    """The ACK of a non-2xx final response to `invite`: its Request-URI, top Via (same
    branch), From, Call-ID, CSeq number and Route, with the response's To."""
    ack = SipMessage(method="ACK", uri=invite.uri)
    ack.headers = [("Via", invite.top_via), ("Max-Forwards", "70"),
                   ("From", invite.get("from", "")), ("To", final.get("to") or invite.get("to", "")),
                   ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq[0]} ACK"),
                   *(("Route", r) for r in invite.get_all("route"))]
    return ack
