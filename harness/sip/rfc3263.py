"""Locating SIP servers by DNS (RFC 3263): NAPTR picks the transports a domain offers, SRV
gives each transport's servers with priorities and weights, A gives their addresses. A
carrier reaches a hotline's SBCs this way, and fails over from one SRV target to the next.

The order among targets is RFC 2782's: lowest priority first; within one priority, a
weighted random draw without replacement. A target of weight 0 is drawn only once no
weighted one is left in its priority (the RFC gives it "a very small chance" of coming
first; here none, so that a test can count on it). `Targets` keeps what was resolved with
its TTL, so a caller resolves again only when the records expire.

Why dnspython: it is the well-kept resolver for all three record types; the standard
library resolves only A and AAAA.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

# RFC 3263 §4.1: the NAPTR services and the SRV prefixes of each transport
SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
RECORD_TYPES = ("any", "A", "AAAA", "SRV", "NAPTR")  # what a DNS fault may pick out
SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


def srv_order(records: list[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782's order: by priority; within a priority, each next one drawn with a chance
    proportional to its weight among those left (weight 0: once every weight left is 0)."""
    out: list[Srv] = []
    for prio in sorted({r.priority for r in records}):
        left = sorted((r for r in records if r.priority == prio), key=lambda r: r.weight)
        while left:
            total = sum(r.weight for r in left)
            if total == 0:
                out += left
                break
            pick = rng.uniform(0, total)
            running = 0
            for i, r in enumerate(left):
                running += r.weight
                if r.weight and running >= pick:
                    out.append(left.pop(i))
                    break
    return out


@dataclass(frozen=True)
class Target:
    """One server to try: its address, port and transport, and the SRV record it came from."""
    host: str
    port: int
    transport: str
    name: str  # the SRV target's name (the records say which target each call used)


@dataclass
class Resolved:
    targets: list[Target]
    expires_at: float  # the shortest TTL among the records it rests on, from when it was read

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at


class DnsFailure(OSError):
    """The name could not be resolved (SERVFAIL, NXDOMAIN, no answer in time): a call that
    needed it fails with cause `dns`."""


def resolve(domain: str, nameserver: tuple[str, int] | None = None,
            transport: str | None = None, timeout: float = 2.0,
            rng: random.Random | None = None) -> Resolved:
    """RFC 3263 §4: the targets for `domain`, in the order to try them. With `transport`
    given, its SRV records only; else the NAPTR records' order of transports (the SRV
    prefixes tried in udp, tcp, tls order where there is no NAPTR). No SRV at all: the
    domain's own A record on port 5060 (5061 for tls). DnsFailure when nothing resolves."""
    import dns.exception
    import dns.resolver

    res = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        res.nameservers, res.port = [nameserver[0]], nameserver[1]
    res.lifetime = timeout
    rng = rng or random.Random()
    now = time.time()
    ttls: list[float] = []

    def query(name: str, kind: str):
        try:
            answer = res.resolve(name, kind)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsFailure(f"{kind} {name}: {type(exc).__name__}: {exc}") from None
        ttls.append(answer.rrset.ttl)
        return list(answer)

    if transport is not None:
        transports = [transport]
    else:
        naptr = sorted(query(domain, "NAPTR"), key=lambda r: (r.order, r.preference))
        transports = [SERVICES[r.service.decode().upper()] for r in naptr
                      if r.service.decode().upper() in SERVICES] or ["udp", "tcp", "tls"]
    targets: list[Target] = []
    for t in transports:
        srv = [Srv(r.priority, r.weight, r.port, r.target.to_text().rstrip("."))
               for r in query(f"{SRV_PREFIX[t]}.{domain}", "SRV")]
        for s in srv_order(srv, rng):
            targets += [Target(a.to_text(), s.port, t, s.target) for a in query(s.target, "A")]
    if not targets:  # no SRV: the domain itself (RFC 3263 §4.2)
        t = transport or "udp"
        targets = [Target(a.to_text(), 5061 if t == "tls" else 5060, t, domain)
                   for a in query(domain, "A")]
    if not targets:
        raise DnsFailure(f"{domain}: no NAPTR, SRV or A record")
    return Resolved(targets, now + min(ttls, default=0))


class Locator:
    """One domain's targets for the calls of a drill, as a carrier's resolver keeps them:
    resolved again once the last resolution's shortest TTL has run out (TTL 0: for every
    call), else taken from the cache. A failed resolution is not cached: the next call
    asks again."""

    def __init__(self, domain: str, nameserver: tuple[str, int] | None = None,
                 transport: str | None = None, timeout: float = 2.0,
                 rng: random.Random | None = None):
        self.domain, self.nameserver, self.transport = domain, nameserver, transport
        self.timeout, self.rng = timeout, rng or random.Random()
        self.cached: Resolved | None = None

    def targets(self) -> tuple[list[Target], float | None]:
        """(the targets in the order to try them, the seconds this call spent resolving:
        None when they came from the cache); DnsFailure when they cannot be had."""
        cached = self.cached
        if cached is not None and cached.fresh():
            return cached.targets, None
        began = time.monotonic()
        got = resolve(self.domain, self.nameserver, self.transport, self.timeout, self.rng)
        self.cached = got
        return got.targets, time.monotonic() - began
