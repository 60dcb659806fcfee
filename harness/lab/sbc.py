"""Sandbox SBC: a SIP proxy that health-checks PBX nodes and re-routes new calls.

Behaves like Kamailio's dispatcher with failover: OPTIONS keepalives mark a
node down after `--down-after` missed probes; a new INVITE goes to a healthy node,
round-robin or by a hash of its Call-ID (Kamailio's dispatcher algorithm 0); when that node sends no response within `--fr-timer` or
answers 5xx/408, the INVITE goes to the next node; with none left the caller
gets 503. Record-Route keeps the SBC in the dialog, so a BYE reaches the node
that answered (and fails if that node is dead).

`--health-check off` makes the SBC a badly configured one that never marks a
node down: no keepalives, and a node that times out is tried again by the
next call. Drills must catch that (traffic never shifts).

Media is anchored (`--media anchor`, the default), as a real SBC does: the SDP
of each INVITE and 2xx is rewritten so the call's RTP flows caller (or carrier
relay) -> SBC -> PBX and back (see media_anchor.py). `--media direct` passes SDP
through untouched.

`--auth-user USER --password-file FILE` makes it guard its trunk as SBCs do: every new INVITE without
valid digest credentials for `--realm` gets 407 with a fresh nonce (qop=auth, `--auth-algorithm`
MD5 or SHA-256); a nonce older than `--nonce-ttl` is answered `stale=true`. Its stats file
counts what it challenged, let through and refused: the truth the harness's records meet.

It is also the hotline's registrar (registrar.py): agents' phones REGISTER here (401 and
the same credentials where it guards), and `--location-file` holds its location table.

Run: `python -m harness.lab.sbc --listen 127.10.0.1:5060 --node pbx-1=127.10.0.11:5060 ...`
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field

from harness.lab.media_anchor import MediaAnchor
from harness.lab.registrar import AGENT_PREFIX, Location, uri_user
from harness.sip.endpoint import SipTransports, run_forever
from harness.sip.digest import challenge_header, check_credentials, parse_credentials
from harness.sip.message import (MAGIC_COOKIE, SipMessage, host_port, new_branch,
                                 response_to, uri_of, via_address)

log = logging.getLogger("sbc")


@dataclass
class Node:
    name: str
    addr: tuple[str, int]
    up: bool = True
    missed: int = 0
    routed: int = 0


@dataclass
class InviteTx:
    """A proxied INVITE transaction: who asked, which nodes were tried."""

    request: SipMessage
    client: tuple[str, int]
    tried: list[str] = field(default_factory=list)
    branch: str = ""
    node: Node | None = None
    timer: asyncio.TimerHandle | None = None
    answered: bool = False
    final_sent: SipMessage | None = None
    agent: Node | None = None  # an agent's own number: its registered phone, and no other


class Sbc:
    def __init__(self, ip: str, port: int, nodes: list[Node], interval: float,
                 probe_timeout: float, down_after: int, fr_timer: float,
                 stats_file: str | None, health_check: bool = True, dispatch: str = "round-robin",
                 anchor_media: bool = True, auth: "Guard | None" = None,
                 tls: tuple[int, str, str] | None = None, srtp: str = "off",
                 location_file: str | None = None, register_limit: float | None = None,
                 retry_after: int = 10):
        self.ip, self.port, self.nodes = ip, port, nodes
        self.interval, self.probe_timeout, self.down_after = interval, probe_timeout, down_after
        self.fr_timer = fr_timer
        self.health_check, self.dispatch = health_check, dispatch
        self.tls_port = tls[0] if tls else None
        ctx = None
        if tls:  # (port, certificate file, key file): SIP over TLS on that port
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(tls[1], tls[2])
        self.proto = SipTransports(self.handle, ctx)
        self.by_client: dict[tuple[str, str], InviteTx] = {}
        self.by_branch: dict[str, InviteTx] = {}
        self.pending_probes: dict[str, tuple[Node, float]] = {}
        self.rr = 0
        self.dialogs: dict[str, Node] = {}  # Call-ID -> node, for UAs that ignore Record-Route
        self.stats_file = stats_file
        self.me = f"sip:{ip}:{port};lr"
        self.media = MediaAnchor(ip, ip, srtp=srtp != "off", wrong_key=srtp == "wrong-key") \
            if anchor_media else None
        self.auth = auth
        self.location = Location(location_file, register_limit, retry_after)

    async def start(self):
        await self.proto.listen(self.ip, self.port, tcp=True, tls_port=self.tls_port)
        if self.health_check:
            asyncio.create_task(self._health_loop())
        if self.media:
            asyncio.create_task(self.media.expire_forever())
        log.info("sbc listening on %s:%d (UDP and TCP), nodes %s", self.ip, self.port,
                 ", ".join(f"{n.name}={n.addr[0]}:{n.addr[1]}" for n in self.nodes))
        return self

    def close(self):
        if self.media:
            self.media.close()
        if self.stats_file:
            out = {n.name: {"routed": n.routed, "up": n.up} for n in self.nodes}
            if self.auth:
                out["_auth"] = self.auth.counts
            if self.media and self.media.srtp:
                out["_srtp"] = self.media.srtp_counts
            out["_registrar"] = self.location.counts
            with open(self.stats_file, "w") as fh:
                json.dump(out, fh)

    # -- health checks -------------------------------------------------------
    async def _health_loop(self):
        while True:
            now = time.monotonic()
            for branch, (node, sent) in list(self.pending_probes.items()):
                if now - sent >= self.probe_timeout:
                    del self.pending_probes[branch]
                    self._probe_result(node, ok=False)
            for node in self.nodes:
                self._probe(node)
            await asyncio.sleep(self.interval)

    def _probe(self, node: Node) -> None:
        branch = new_branch()
        msg = SipMessage(method="OPTIONS", uri=f"sip:{node.addr[0]}:{node.addr[1]}")
        msg.headers = [("Via", self.proto.via(node.addr, self.ip, self.port, branch)),
                       ("Max-Forwards", "70"), ("From", f"<sip:sbc@{self.ip}>;tag=hc"),
                       ("To", f"<sip:{node.addr[0]}:{node.addr[1]}>"),
                       ("Call-ID", f"hc-{branch}"), ("CSeq", "1 OPTIONS")]
        self.pending_probes[branch] = (node, time.monotonic())
        self.proto.send(msg, node.addr)

    def _probe_result(self, node: Node, ok: bool) -> None:
        if not self.health_check:
            return  # misconfigured on purpose: nodes are never marked down
        if ok:
            node.missed = 0
            if not node.up:
                node.up = True
                log.info("node %s up", node.name)
            return
        node.missed += 1
        if node.up and node.missed >= self.down_after:
            node.up = False
            log.info("node %s down after %d missed probes", node.name, node.missed)

    # -- routing ---------------------------------------------------------------
    def handle(self, msg: SipMessage, addr) -> None:
        if msg.is_request:
            self._request(msg, addr)
        else:
            self._response(msg, addr)

    def _request(self, msg: SipMessage, addr) -> None:
        via = msg.top_via
        if "rport=" not in via and ("rport" in via or self.proto.streamed(addr)):
            # RFC 3581 (and any TCP peer): answer where the request really came from
            stamp = f"received={addr[0]};rport={addr[1]}"
            self._rewrite_top_via(msg, via.replace("rport", stamp, 1) if "rport" in via
                                  else f"{via};{stamp}")
        routes = msg.get_all("route")
        if routes and self._is_me(uri_of(routes[0])):
            self._forward_in_dialog(msg, routes[1:])
        elif msg.method == "INVITE" and "tag=" not in (msg.get("to") or ""):
            self._initial_invite(msg, addr)
        elif "tag=" in (msg.get("to") or "") and msg.call_id in self.dialogs:
            self._forward_to_node(msg, self.dialogs[msg.call_id])
        elif msg.method == "OPTIONS":
            self.proto.send(response_to(msg, 200), addr)
        elif msg.method == "ACK":
            return  # ACK of a non-2xx final we sent: absorbed here
        elif msg.method == "CANCEL":
            self._cancel(msg, addr)
        elif msg.method == "REGISTER":
            self._register(msg)
        else:
            self.proto.send(response_to(msg, 481), addr)

    def _register(self, msg: SipMessage) -> None:
        """An agent's phone registering here (the SBC is the hotline's registrar), with the
        same credentials as calls where the SBC asks for them (401, as registrars do)."""
        if self.auth:
            challenge = self.auth.challenge(msg, registrar=True)
            if challenge is not None:
                self.proto.send(challenge, via_address(msg.top_via))
                return
        self.proto.send(self.location.register(msg), via_address(msg.top_via))

    @staticmethod
    def _rewrite_top_via(msg: SipMessage, new_via: str) -> None:
        for i, (k, v) in enumerate(msg.headers):
            if k.lower() == "via":
                parts = [p.strip() for p in v.split(",")]
                parts[0] = new_via
                msg.headers[i] = (k, ", ".join(parts))
                return

    def _is_me(self, uri: str) -> bool:
        return host_port(uri) == (self.ip, self.port)

    def _end_media(self, msg: SipMessage) -> None:
        if self.media and msg.method == "BYE":
            self.media.end(msg.call_id)

    def _forward_in_dialog(self, msg: SipMessage, rest_routes: list[str]) -> None:
        self._end_media(msg)
        msg.remove("Route")
        for r in rest_routes:
            msg.headers.append(("Route", r))
        dest = host_port(uri_of(rest_routes[0])) if rest_routes else host_port(msg.uri)
        self._push_via(msg, self._stateless_branch(msg), dest)
        self.proto.send(msg, dest)

    def _forward_to_node(self, msg: SipMessage, node: Node) -> None:
        if msg.method == "BYE":
            self.dialogs.pop(msg.call_id, None)
        self._end_media(msg)
        self._push_via(msg, self._stateless_branch(msg), node.addr)
        self.proto.send(msg, node.addr)

    def _stateless_branch(self, msg: SipMessage) -> str:
        key = f"{msg.branch}|{msg.method}".encode()
        return MAGIC_COOKIE + "sl" + hashlib.sha1(key).hexdigest()[:16]

    def _push_via(self, msg: SipMessage, branch: str, dest) -> None:
        mf = int(msg.get("max-forwards", "70") or 70)
        msg.set("Max-Forwards", str(mf - 1))
        msg.prepend("Via", self.proto.via(dest, self.ip, self.port, branch))

    def _initial_invite(self, msg: SipMessage, addr) -> None:
        key = (msg.call_id, msg.branch)
        tx = self.by_client.get(key)
        if tx:  # retransmission from the caller
            self.proto.send(tx.final_sent or response_to(msg, 100), via_address(msg.top_via))
            return
        if int(msg.get("max-forwards", "70") or 70) <= 0:
            self.proto.send(response_to(msg, 483), via_address(msg.top_via))
            return
        # which carrier's path a call came in by (its relay's address): the SBC's own record
        log.info("invite %s from %s", msg.call_id, addr[0])
        if self.auth:
            challenge = self.auth.challenge(msg)
            if challenge is not None:
                self.proto.send(challenge, via_address(msg.top_via))
                return
        if self.media and msg.body:
            msg.body = self.media.offer(msg.call_id, msg.body)
        user = uri_user(msg.uri)
        contact = self.location.contact_of(user)
        if contact is None and user.startswith(AGENT_PREFIX):
            # an agent's number with no phone registered: the registrar's lookup found none
            if self.media:
                self.media.end(msg.call_id)
            self.proto.send(response_to(msg, 404, "Not Found", to_tag=secrets.token_hex(4)),
                            via_address(msg.top_via))
            return
        tx = InviteTx(request=msg, client=via_address(msg.top_via))
        if contact is not None:
            tx.agent = Node(user, host_port(contact))
        self.by_client[key] = tx
        self.proto.send(response_to(msg, 100), tx.client)
        self._try_next(tx)

    def _pick(self, tried: list[str], call_id: str) -> Node | None:
        healthy = [n for n in self.nodes if n.up and n.name not in tried]
        if not healthy:
            return None
        if self.dispatch == "hash":
            digest = hashlib.sha1(call_id.encode()).digest()
            return healthy[int.from_bytes(digest[:4], "big") % len(healthy)]
        if tried:  # failing over: the next node after the last one tried, as Kamailio's
            # ds_next_dst does; the shared counter is for new calls only, so a retry
            # never shifts where the next new call goes
            last = [n.name for n in self.nodes].index(tried[-1])
            return min(healthy, key=lambda n: (self.nodes.index(n) - last) % len(self.nodes))
        self.rr = (self.rr + 1) % len(healthy)
        return healthy[self.rr]

    def _try_next(self, tx: InviteTx) -> None:
        if tx.agent is not None:  # a phone tried once: no answer is "not available now"
            node = None if tx.tried else tx.agent
            if node is None:
                self._finish(tx, response_to(tx.request, 480, "Temporarily Unavailable"))
                return
        else:
            node = self._pick(tx.tried, tx.request.call_id)
        if node is None:
            self._finish(tx, response_to(tx.request, 503))
            return
        tx.tried.append(node.name)
        tx.node = node
        tx.branch = new_branch()
        self.by_branch[tx.branch] = tx
        fwd = SipMessage(method=tx.request.method, uri=tx.request.uri,
                         headers=list(tx.request.headers), body=tx.request.body)
        fwd.prepend("Record-Route", f"<{self.me}>")
        self._push_via(fwd, tx.branch, node.addr)
        node.routed += 1
        self.proto.send(fwd, node.addr)
        loop = asyncio.get_running_loop()
        tx.timer = loop.call_later(self.fr_timer, self._no_answer, tx, tx.branch)

    def _no_answer(self, tx: InviteTx, branch: str) -> None:
        if tx.branch != branch or tx.answered or tx.final_sent:
            return
        log.info("no response from %s for %s: failing over", tx.node.name, tx.request.call_id)
        if tx.agent is None:
            self._probe_result(tx.node, ok=False)
        self._try_next(tx)

    def _finish(self, tx: InviteTx, final: SipMessage) -> None:
        tx.final_sent = final
        if self.media and final.status >= 300:
            self.media.end(tx.request.call_id)
        self.proto.send(final, tx.client)
        loop = asyncio.get_running_loop()
        loop.call_later(32, self._forget, tx)

    def _forget(self, tx: InviteTx) -> None:
        self.by_client.pop((tx.request.call_id, tx.request.branch), None)
        for b in [b for b, t in self.by_branch.items() if t is tx]:
            del self.by_branch[b]

    def _cancel(self, msg: SipMessage, addr) -> None:
        self.proto.send(response_to(msg, 200), via_address(msg.top_via))
        tx = self.by_client.get((msg.call_id, msg.branch))
        if tx and not tx.final_sent:  # ringing or not: a 2xx sent is the only way past this
            self._finish(tx, response_to(tx.request, 487, "Request Terminated"))
            if tx.node is not None:  # RFC 3261 §16.10: the branch is cancelled too
                self._cancel_branch(tx)

    def _cancel_branch(self, tx: InviteTx) -> None:
        if tx.timer:
            tx.timer.cancel()
        cancel = SipMessage(method="CANCEL", uri=tx.request.uri)
        cancel.headers = [("Via", self.proto.via(tx.node.addr, self.ip, self.port, tx.branch)),
                          ("Max-Forwards", "70"), ("From", tx.request.get("from") or ""),
                          ("To", tx.request.get("to") or ""), ("Call-ID", tx.request.call_id),
                          ("CSeq", f"{tx.request.cseq[0]} CANCEL"), ("Content-Length", "0")]
        self.proto.send(cancel, tx.node.addr)

    def _response(self, msg: SipMessage, addr) -> None:
        branch = msg.branch
        if branch in self.pending_probes:
            node, _ = self.pending_probes.pop(branch)
            self._probe_result(node, ok=msg.status < 500)
            return
        vias = msg.get_all("via")
        if not vias or f"{self.ip}:{self.port}" not in vias[0]:
            return
        tx = self.by_branch.get(branch)
        self._pop_via(msg)
        if tx is None or msg.cseq[1] != "INVITE":
            rest = msg.get_all("via")
            if rest:
                self.proto.send(msg, via_address(rest[0]))
            return
        if tx.branch != branch:
            return  # a late answer from a node we already gave up on
        if tx.timer:
            tx.timer.cancel()
        if tx.final_sent is not None and msg.status >= 300:
            self._ack_upstream(tx, msg)  # the 487 of a branch we cancelled: the caller has its own
            return
        if msg.status < 200:
            tx.answered = tx.answered or msg.status > 100
            if msg.status > 100:
                self.proto.send(msg, tx.client)
        elif msg.status < 300:
            tx.answered = True
            self.dialogs[tx.request.call_id] = tx.node
            if len(self.dialogs) > 20000:
                self.dialogs.pop(next(iter(self.dialogs)))
            if self.media and msg.body:
                msg.body = self.media.answer(tx.request.call_id, msg.body)
            tx.final_sent = msg  # 2xx retransmissions are forwarded statelessly below
            self.proto.send(msg, tx.client)
            asyncio.get_running_loop().call_later(32, self._forget, tx)
        elif msg.status >= 500 or msg.status == 408:
            log.info("%s answered %d for %s: trying the next node", tx.node.name, msg.status,
                     tx.request.call_id)
            self._ack_upstream(tx, msg)
            self._try_next(tx)
        else:
            self._ack_upstream(tx, msg)
            self._finish(tx, msg)

    @staticmethod
    def _pop_via(msg: SipMessage) -> None:
        for i, (k, v) in enumerate(msg.headers):
            if k.lower() == "via":
                parts = [p for p in v.split(",")]
                if len(parts) > 1:
                    msg.headers[i] = (k, ",".join(parts[1:]).strip())
                else:
                    del msg.headers[i]
                return

    def _ack_upstream(self, tx: InviteTx, resp: SipMessage) -> None:
        ack = SipMessage(method="ACK", uri=tx.request.uri)
        ack.headers = [("Via", self.proto.via(tx.node.addr, self.ip, self.port, tx.branch)),
                       ("Max-Forwards", "70"), ("From", tx.request.get("from") or ""),
                       ("To", resp.get("to") or ""), ("Call-ID", tx.request.call_id),
                       ("CSeq", f"{tx.request.cseq[0]} ACK")]
        self.proto.send(ack, tx.node.addr)


@dataclass
class Guard:
    """The trunk's digest guard: one user, one realm, nonces that go stale."""

    user: str
    password: str
    realm: str = "sandbox"
    algorithm: str = "MD5"
    nonce_ttl: float = 30.0
    nonces: dict[str, float] = field(default_factory=dict)  # nonce -> when it was issued
    counts: dict[str, int] = field(default_factory=lambda: {
        "challenged": 0, "authenticated": 0, "refused": 0, "stale": 0})

    def challenge(self, msg: SipMessage, registrar: bool = False) -> SipMessage | None:
        """The 407 this INVITE gets (401 for a REGISTER, `registrar`), or None when its
        credentials are good (counted)."""
        now = time.monotonic()
        for nonce in [n for n, t in self.nonces.items() if now - t > 4 * self.nonce_ttl]:
            del self.nonces[nonce]
        params = parse_credentials(msg.get("authorization" if registrar else
                                           "proxy-authorization") or "")
        stale = False
        if params:
            verdict = check_credentials(params, self.realm, {self.user: self.password},
                                        msg.method, self.algorithm)
            issued = self.nonces.get(params.get("nonce", ""))
            if verdict == "ok" and issued is not None and now - issued <= self.nonce_ttl:
                self.counts["authenticated"] += 1
                log.info("auth ok: %s", msg.call_id)
                return None
            stale = verdict == "ok"  # right password, an old nonce: ask again, stale=true
            self.counts["stale" if stale else "refused"] += 1
            log.info("auth %s: %s", "stale nonce" if stale else "refused", msg.call_id)
        else:
            self.counts["challenged"] += 1
            log.info("auth challenged: %s", msg.call_id)
        nonce = secrets.token_hex(12)
        self.nonces[nonce] = now
        resp = response_to(msg, 401 if registrar else 407, to_tag=secrets.token_hex(4))
        resp.headers.append(("WWW-Authenticate" if registrar else "Proxy-Authenticate",
                             challenge_header(self.realm, nonce, self.algorithm, stale=stale)))
        return resp


def parse_node(text: str) -> Node:
    name, _, hp = text.partition("=")
    ip, _, port = hp.rpartition(":")
    return Node(name, (ip, int(port)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", required=True, help="ip:port")
    ap.add_argument("--node", action="append", required=True, help="name=ip:port")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between OPTIONS probes")
    ap.add_argument("--probe-timeout", type=float, default=0.4)
    ap.add_argument("--down-after", type=int, default=2, help="missed probes before a node is down")
    ap.add_argument("--fr-timer", type=float, default=1.0,
                    help="seconds to wait for a node's first response before failing over")
    ap.add_argument("--health-check", choices=("on", "off"), default="on",
                    help="off: never mark a node down (a misconfigured SBC, for drills to catch)")
    ap.add_argument("--dispatch", choices=("round-robin", "hash"), default="round-robin",
                    help="how a new call picks a node: in turn, or by a hash of its Call-ID")
    ap.add_argument("--media", choices=("anchor", "direct"), default="anchor",
                    help="anchor: relay every call's RTP through the SBC (rewrite SDP); "
                         "direct: pass SDP through, media flows end to end")
    ap.add_argument("--auth-user", metavar="USER",
                    help="challenge every new INVITE (407, digest) for this user's credentials")
    ap.add_argument("--password-file", help="the file whose first line is --auth-user's password")
    ap.add_argument("--realm", default="sandbox", help="the digest realm of --auth-user")
    ap.add_argument("--auth-algorithm", choices=("MD5", "SHA-256", "SHA-512-256"), default="MD5")
    ap.add_argument("--nonce-ttl", type=float, default=30.0,
                    help="seconds a nonce is good for; older ones are answered stale=true")
    ap.add_argument("--tls-port", type=int, help="also serve SIP over TLS on this port")
    ap.add_argument("--tls-cert", help="the TLS listener's certificate (PEM)")
    ap.add_argument("--tls-key", help="its private key (PEM)")
    ap.add_argument("--srtp", choices=("off", "on", "wrong-key"), default="off",
                    help="on: end SDES-SRTP offered by callers (anchored media only: the nodes "
                         "get RTP); wrong-key: send with a key other than the one answered (a "
                         "misconfigured SBC, for key-mismatch drills)")
    ap.add_argument("--location-file", help="the registrar's location table, written on "
                    "every change (JSON: address of record -> contact and expiry)")
    ap.add_argument("--register-limit", type=float, help="REGISTERs a second the registrar "
                    "takes; past it 503 with Retry-After (a registrar shedding a storm)")
    ap.add_argument("--retry-after", type=int, default=10,
                    help="seconds the 503's Retry-After asks for (default 10)")
    ap.add_argument("--stats-file")
    a = ap.parse_args(argv)
    if a.srtp != "off" and a.media != "anchor":
        ap.error("--srtp needs --media anchor: only anchored media passes through the SBC")
    guard = None
    if a.auth_user:
        with open(a.password_file, encoding="utf-8") as fh:
            password = fh.readline().rstrip("\r\n")
        guard = Guard(a.auth_user, password, a.realm, a.auth_algorithm, a.nonce_ttl)
    ip, port = a.listen.rsplit(":", 1)
    sbc = Sbc(ip, int(port), [parse_node(n) for n in a.node], a.interval, a.probe_timeout,
              a.down_after, a.fr_timer, a.stats_file, a.health_check == "on", a.dispatch,
              a.media == "anchor", guard,
              (a.tls_port, a.tls_cert, a.tls_key) if a.tls_port else None, a.srtp,
              a.location_file, a.register_limit, a.retry_after)
    run_forever(sbc.start)


if __name__ == "__main__":
    main()
