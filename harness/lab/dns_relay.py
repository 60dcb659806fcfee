"""A DNS path the harness controls: a relay in front of a real DNS server (the sandbox's
dnsmasq), through which the carriers' side resolves the hotline's SBCs. Rules added on its
control channel (control.py) act on the queries that match them, by name pattern and record
type, as a failing resolver or a broken zone would:

drop      no answer at all (the resolver times out)
delay     the answer, delay_ms late
servfail  SERVFAIL, the server never asked (a resolver whose upstream failed)
nxdomain  NXDOMAIN (the name is gone)
wrong     the server's answer with every A record's address replaced by `address`
stale     the answer the server gave before the rule was added (records changed since are
          not seen); a name never asked before is asked
ttl       the server's answer with every record's TTL set to `ttl`

It counts what it did, rule by rule, and logs each query it answered on a rule (time, rule,
name, type): the ground truth a drill's `dns` figures are checked against.

Why a relay of our own rather than the DNS server's own features: dnsmasq and unbound can
refuse or rewrite names, but not per record type, not for a set time, and not on a control
channel a fault can add to and remove from by name; the relay keeps the real server real.
"""
from __future__ import annotations

import argparse
import asyncio
import fnmatch
import logging
import socket
import time
from pathlib import Path
from typing import Literal

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.lab.control import json_lines_server
from harness.sip.endpoint import run_forever
from harness.sip.rfc3263 import RECORD_TYPES

log = logging.getLogger("dns-relay")
UPSTREAM_WAIT = 2.0  # s the relay waits for the DNS server (a dead one: no answer, as it would)


class DnsRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    type: Literal["drop", "delay", "servfail", "nxdomain", "wrong", "stale", "ttl"]
    match: str = Field("*", min_length=1, description="a name pattern (fnmatch), e.g. "
                       "*.hotline.test or _sip._udp.*")
    rtype: Literal[RECORD_TYPES] = "any"
    delay_ms: float = Field(0, ge=0, le=60000)
    address: str | None = Field(None, description="wrong: the address every A record gets")
    ttl: int | None = Field(None, ge=0, le=86400)

    @model_validator(mode="after")
    def _needs(self):
        needed = {"delay": ("delay_ms", self.delay_ms > 0), "wrong": ("address", self.address),
                  "ttl": ("ttl", self.ttl is not None)}.get(self.type)
        if needed and not needed[1]:
            raise ValueError(f"a {self.type} rule needs {needed[0]}")
        if self.address is not None:
            socket.inet_aton(self.address)  # OSError (a ValueError's cousin) caught by add
        return self

    def applies(self, qname: str, qtype: str) -> bool:
        return fnmatch.fnmatch(qname.rstrip(".").lower(), self.match.lower()) and \
            self.rtype in ("any", qtype)


class DnsRelay:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int],
                 control: tuple[str, int] | None, token: str | None, log_file: str | None):
        self.listen, self.upstream, self.control, self.token = listen, upstream, control, token
        self.rules: dict[str, DnsRule] = {}
        self.hits: dict[str, int] = {}
        self.counts = {"queries": 0, "forwarded": 0, "unanswered": 0}
        self.memo: dict[tuple[str, str], bytes] = {}  # (name, type) -> the server's last answer
        self.frozen: dict[str, dict] = {}  # a stale rule's name -> the answers it keeps
        self.log_file = open(log_file, "a", buffering=1) if log_file else None
        self.sock = None

    async def start(self):
        loop = asyncio.get_running_loop()
        relay = self

        class _Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                relay.sock = transport

            def datagram_received(self, data, addr):
                loop.create_task(relay.answer(data, addr))

        await loop.create_datagram_endpoint(_Proto, local_addr=self.listen)
        if self.control:
            await asyncio.start_server(json_lines_server(self.command, self.token), *self.control)
        log.info("dns relay %s:%d -> %s:%d", *self.listen, *self.upstream)
        return self

    async def answer(self, data: bytes, client) -> None:
        self.counts["queries"] += 1
        try:
            query = dns.message.from_wire(data)
            q = query.question[0]
            qname, qtype = q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
        except Exception:  # not a query we can read: pass it on as it is
            query, qname, qtype = None, "", ""
        rule = next((r for r in self.rules.values() if query is not None
                     and r.applies(qname, qtype)), None)
        if rule is not None:
            self.hits[rule.name] = self.hits.get(rule.name, 0) + 1
            self._note(rule, qname, qtype)
        reply = await self._reply(rule, query, data, qname, qtype)
        if reply is not None:
            self.sock.sendto(reply, client)

    async def _reply(self, rule: DnsRule | None, query, data: bytes, qname: str,
                     qtype: str) -> bytes | None:
        kind = rule.type if rule else None
        if kind == "drop":
            return None
        if kind in ("servfail", "nxdomain"):
            r = dns.message.make_response(query)
            r.set_rcode(dns.rcode.SERVFAIL if kind == "servfail" else dns.rcode.NXDOMAIN)
            r.flags |= dns.flags.RA
            return r.to_wire()
        if kind == "stale" and (qname, qtype) in self.frozen[rule.name]:
            return _with_id(self.frozen[rule.name][(qname, qtype)], query.id)
        if kind == "delay":
            await asyncio.sleep(rule.delay_ms / 1000)
        got = await self._ask(data)
        if got is None:
            return None
        if query is not None:
            self.memo[(qname, qtype)] = got
        if kind in ("wrong", "ttl"):
            return _rewrite(got, rule)
        return got

    async def _ask(self, data: bytes) -> bytes | None:
        """The DNS server's answer, or None when it gives none in UPSTREAM_WAIT."""
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            try:
                s.connect(self.upstream)
                await loop.sock_sendall(s, data)
                got = await asyncio.wait_for(loop.sock_recv(s, 65535), UPSTREAM_WAIT)
            except (OSError, asyncio.TimeoutError):  # refused (dead), or silent
                self.counts["unanswered"] += 1
                return None
        self.counts["forwarded"] += 1
        return got

    def close(self) -> None:
        if self.log_file:
            self.log_file.close()

    def _note(self, rule: DnsRule, qname: str, qtype: str) -> None:
        if self.log_file:
            self.log_file.write(f"{time.time():.6f} {rule.name} {rule.type} {qname} {qtype}\n")

    def command(self, req: dict) -> dict:
        op = req.get("op")
        if op == "list":
            return {"ok": True, "toxics": [{**r.model_dump(), "hits": self.hits.get(n, 0)}
                                           for n, r in self.rules.items()],
                    "counts": self.counts}
        if op == "add":
            try:
                rule = DnsRule.model_validate(req.get("toxic") or {})
            except (ValidationError, ValueError, OSError) as exc:
                return {"ok": False, "error": str(exc)}
            if rule.name in self.rules:
                return {"ok": False, "error": f"a rule named {rule.name} is there already"}
            if rule.type == "stale":  # what the server said so far is what it keeps saying
                self.frozen[rule.name] = {k: v for k, v in self.memo.items()
                                          if rule.applies(*k)}
            self.rules[rule.name] = rule
            self.hits[rule.name] = 0
            log.info("rule added: %s", rule.model_dump(exclude_defaults=True))
            return {"ok": True}
        if op == "remove":
            name = str(req.get("name"))
            removed = self.rules.pop(name, None) is not None
            self.frozen.pop(name, None)
            log.info("rule %s removed (%s), %d hits", name, removed, self.hits.get(name, 0))
            return {"ok": True, "removed": removed, "hits": self.hits.get(name, 0)}
        return {"ok": False, "error": f"unknown op {op!r}; use list, add or remove"}


def _with_id(wire: bytes, qid: int) -> bytes:
    return qid.to_bytes(2, "big") + wire[2:]


def _rewrite(wire: bytes, rule: DnsRule) -> bytes:
    """The server's answer with the rule's change: A addresses (wrong) or TTLs (ttl)."""
    msg = dns.message.from_wire(wire)
    for section in (msg.answer, msg.additional):
        for rrset in section:
            if rule.type == "ttl":
                rrset.ttl = rule.ttl
            elif rrset.rdtype == dns.rdatatype.A:
                for rd in list(rrset):
                    rrset.remove(rd)
                    rrset.add(rd.replace(address=rule.address))
    return msg.to_wire()


def dns_answers(addr: tuple[str, int], name: str, timeout: float = 0.5) -> bool:
    """Whether a DNS server at `addr` answers a query for `name` (any answer, NXDOMAIN too)."""
    import dns.query
    try:
        dns.query.udp(dns.message.make_query(name, "A"), addr[0], timeout=timeout, port=addr[1])
        return True
    except Exception:  # a timeout, a refusal: not answering (yet)
        return False


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="ip:port the resolvers ask")
    ap.add_argument("--upstream", required=True, help="ip:port of the DNS server")
    ap.add_argument("--control", help="ip:port of the JSON-lines control channel (TCP)")
    ap.add_argument("--token-file", help="a file holding the token every control request "
                                         "must carry (without it, the channel is open)")
    ap.add_argument("--log", help="a file each query answered on a rule is logged to")
    a = ap.parse_args(argv)

    def addr(text):
        host, port = text.rsplit(":", 1)
        return host, int(port)
    token = Path(a.token_file).read_text().strip() if a.token_file else None
    run_forever(DnsRelay(addr(a.listen), addr(a.upstream), addr(a.control) if a.control else None,
                         token, a.log).start)


if __name__ == "__main__":
    main()
