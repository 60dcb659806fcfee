"""`dns.*` faults: a DNS path that fails, on the DNS relay in front of the hotline's DNS
server (lab/dns_relay.py), for the names matching `match` and the record type `rtype`:

dns.drop      no answer (resolvers time out)      dns.delay     delay_ms late
dns.servfail  SERVFAIL                            dns.nxdomain  NXDOMAIN
dns.wrong     A records answer `address`          dns.stale     the answers from before
dns.ttl       every record's TTL set to `ttl`

Each adds one named rule through the relay's control channel (the target's `relay:`
address, as the UDP relays'); rollback removes exactly that rule, by name. The DNS server
itself is a node a `process.kill` takes out; a node's own resolver is cut with `net.cut` on
udp/53.
"""
from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.faults.base import RelayFault, relay_family
from harness.sip.rfc3263 import RECORD_TYPES as RTYPES


class _Names(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str = Field("*", min_length=1, description="the names it acts on (a pattern)")
    rtype: str = Field("any", description="the record type it acts on: " + ", ".join(RTYPES))

    @field_validator("rtype")
    @classmethod
    def _rtype(cls, v: str) -> str:
        v = v if v == "any" else v.upper()
        if v not in RTYPES:
            raise ValueError(f"rtype {v!r}: use one of {', '.join(RTYPES)}")
        return v


class DelayParams(_Names):
    delay_ms: float = Field(gt=0, le=60000)


class WrongParams(_Names):
    address: str

    @field_validator("address")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        ipaddress.IPv4Address(v)  # ValueError names the bad address
        return v


class TtlParams(_Names):
    ttl: int = Field(ge=0, le=86400)


class _DnsFault(RelayFault):
    relay_kind = "DNS relay"


for _type, _params, _doc in (
        ("drop", _Names, "Answer nothing: the carriers' resolvers time out."),
        ("delay", DelayParams, "Answer delay_ms late."),
        ("servfail", _Names, "Answer SERVFAIL."),
        ("nxdomain", _Names, "Answer NXDOMAIN: the name is gone."),
        ("wrong", WrongParams, "Answer A records with a wrong address."),
        ("stale", _Names, "Keep answering what the server said before."),
        ("ttl", TtlParams, "Answer with every record's TTL set to `ttl`.")):
    relay_family(f"dns.{_type}", _type, _params, _doc, base=_DnsFault)
