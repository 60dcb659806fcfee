"""The caller's dialog (RFC 3261 §12): what one call learns and every request it sends.

A `Dialog` builds requests (its own CSeq counter, route set and remote target once a
2xx confirms it), sends them through its transport in a client transaction, and is the one
place where a 401/407 challenge is answered: `Challenges.answer` gets the request and the
challenge and returns the request again with credentials (the next CSeq, the same Call-ID
and From tag), or None when it has none (digest.py's `DigestCredentials` answers with the
entry point's credentials).
"""
from __future__ import annotations

import itertools
from typing import Callable, Protocol

from harness.sip.message import SipMessage, host_port, new_branch, response_to, token, uri_of, \
    via_address
from harness.sip.transaction import ClientTransaction
from harness.sip.transport import Transport

CHALLENGES = (401, 407)


class Challenges(Protocol):
    def answer(self, request: SipMessage, challenge: SipMessage,
               dialog: "Dialog") -> SipMessage | None:
        """The request re-sent with credentials for this challenge, or None (give up)."""


class NoCredentials:
    def answer(self, request, challenge, dialog):
        return None


class Dialog:
    """One call's dialog state over one transport to one address (`entry`)."""

    def __init__(self, transport: Transport, entry: tuple[str, int], *, callee: str | None,
                 call_id: str, outbound_proxy: bool = False,
                 extra_headers: list[tuple[str, str]] = (),
                 challenges: Challenges = NoCredentials()):
        self.transport, self.entry = transport, entry
        self.call_id = call_id
        self.outbound_proxy = outbound_proxy
        self.extra_headers = list(extra_headers)
        self.challenges = challenges
        self.cseq = itertools.count(1)
        self.from_tag = token(8)
        user = f"{callee}@" if callee else ""  # None: the server itself (an OPTIONS probe)
        self.to_header = f"<sip:{user}{entry[0]}:{entry[1]}>"
        self.route_set: list[str] = []
        self.remote_target = f"sip:{user}{entry[0]}:{entry[1]}"
        self.heard = False  # the last transaction got any response at all
        self.challenged = False  # a request was answered with 401/407 and sent again
        self.lingering = False  # given up on, still ending the far end's side (uac._give_up)
        self.local_sdp = b""  # our offer, answered again to a re-INVITE
        self.bye_at: float | None = None  # the far end's BYE came then (answered 200)
        # the far end's re-INVITEs and UPDATEs (an agent's phone taking the media, say):
        # (arrival, CSeq number, SDP body), each answered 200 with our SDP again
        self.refreshes: list[tuple[float, int, bytes]] = []

    @property
    def closed(self) -> bool:
        return self.transport.closed

    def request(self, method: str, body: bytes = b"", uri: str | None = None,
                cseq: int | None = None) -> SipMessage:
        """A request in this dialog, with the next CSeq unless one is given."""
        t = self.transport
        msg = SipMessage(method=method, uri=uri or self.remote_target)
        local = f"{t.ip}:{t.port}"
        msg.headers = [
            ("Via", t.via_value(new_branch())),
            ("Max-Forwards", "70"),
            ("From", f"<sip:drill@{local}>;tag={self.from_tag}"),
            ("To", self.to_header),
            ("Call-ID", self.call_id),
            ("CSeq", f"{next(self.cseq) if cseq is None else cseq} {method}"),
            ("Contact", self.contact()),
            ("User-Agent", "hotline-drill"),
        ]
        msg.headers += [("Route", r) for r in self.route_set]
        msg.headers += self.extra_headers
        if body:
            msg.headers.append(("Content-Type", "application/sdp"))
        msg.body = body
        return msg

    def contact(self) -> str:
        """Where the far end reaches us in this dialog: our own flow."""
        t = self.transport
        return f"<sip:drill@{t.ip}:{t.port}{t.uri_param}>"

    def next_hop(self) -> tuple[str, int]:
        """RFC 3261 §12.2.1.1: the first route, else the remote target (the entry before a
        dialog); always the entry when it is an outbound proxy."""
        if self.outbound_proxy:
            return self.entry
        if self.route_set:
            return host_port(uri_of(self.route_set[0]))
        return host_port(self.remote_target)

    def send(self, msg: SipMessage, dest: tuple[str, int] | None = None) -> None:
        self.transport.send(msg, dest or self.next_hop())

    def transact(self, request: SipMessage, timeout: float,
                 on_provisional: Callable[[SipMessage], None] | None = None,
                 first_response_within: float | None = None,
                 refused_ends: bool = False) -> tuple[SipMessage, SipMessage | None]:
        """(the request last sent, its final response or None). A 401/407 goes to the
        challenge hook; the request it returns is sent in a new transaction."""
        while True:
            tx = ClientTransaction(self.transport, request, self.next_hop())
            final = tx.run(timeout, on_provisional, first_response_within, refused_ends)
            self.heard = tx.heard
            if final is None or final.status not in CHALLENGES:
                return request, final
            again = self.challenges.answer(request, final, self)
            if again is None:
                return request, final
            self.challenged, request = True, again

    def confirm(self, final: SipMessage) -> str:
        """Learn the dialog from a 2xx to the INVITE: the To tag, the route set (Record-Route
        reversed) and the remote target (Contact); returns that Contact's URI."""
        contact = uri_of(final.get("contact", "") or "")
        self.to_header = final.get("to", self.to_header) or self.to_header
        self.route_set = list(final.get_all("record-route"))[::-1]
        self.remote_target = contact or self.remote_target
        return contact

    def ack_2xx(self, invite: SipMessage) -> None:
        """The ACK of a 2xx: end to end, a new branch, the INVITE's CSeq number, the route set."""
        self.send(self.request("ACK", cseq=invite.cseq[0]))

    def far_end_bye(self) -> float | None:
        """When the far end's BYE came, if one came on this dialog (answered 200 OK here);
        else None. Reads only what has arrived already (serve_far_end)."""
        self.serve_far_end()
        return self.bye_at

    def serve_far_end(self) -> None:
        """Answer the far end's requests in this dialog that have arrived: a BYE (200, kept
        in `bye_at`), a re-INVITE or UPDATE (200 with our own SDP again, kept in
        `refreshes`; a retransmission is answered again, kept once). ACKs need no answer."""
        for msg in self.transport.waiting():
            if not msg.is_request or msg.call_id != self.call_id or msg.method == "ACK":
                continue
            ok = response_to(msg, 200)
            if msg.method == "BYE":
                self.bye_at = self.bye_at or msg.received_at
            elif msg.method in ("INVITE", "UPDATE"):
                if msg.cseq[0] not in {c for _, c, _ in self.refreshes}:
                    self.refreshes.append((msg.received_at, msg.cseq[0], msg.body))
                ok.headers.append(("Contact", self.contact()))
                if msg.body:  # an offer gets our answer: the same media as before
                    ok.headers.append(("Content-Type", "application/sdp"))
                    ok.body = self.local_sdp
            else:
                continue  # not this dialog's business (an OPTIONS, say): left unanswered
            try:
                self.transport.send(ok, None if self.transport.reliable else via_address(msg.top_via))
            except ValueError:  # a Via we cannot answer: the far end retransmits, gives up
                pass

    def close(self) -> None:
        self.transport.close()
