"""RFC 3263 against a real DNS server (Debian's dnsmasq, on a port of its own): NAPTR names
the transports in order, SRV gives the targets by priority, A their addresses; the
resolution expires with the records' TTL; a name with no records is a DnsFailure, as is a
server that does not answer."""
import time

import pytest

from harness.sip.rfc3263 import DnsFailure, resolve
from tests.conftest import free_udp_port


def test_naptr_then_srv_by_priority_then_a(dnsmasq):
    r = resolve("hotline.test", ("127.0.0.1", dnsmasq))
    assert [(t.transport, t.host, t.port) for t in r.targets] == [
        ("tcp", "127.0.0.11", 5060),                               # NAPTR order 10: TCP
        ("udp", "127.0.0.11", 5060), ("udp", "127.0.0.12", 5070)]  # then UDP, by priority
    assert [t.name for t in r.targets] == ["sbc-a.hotline.test"] * 2 + ["sbc-b.hotline.test"]
    assert 0 < r.expires_at - time.time() <= 30


def test_one_transport_and_a_domain_without_srv(dnsmasq):
    udp = resolve("hotline.test", ("127.0.0.1", dnsmasq), transport="udp")
    assert [t.port for t in udp.targets] == [5060, 5070]
    plain = resolve("plain.test", ("127.0.0.1", dnsmasq))
    assert [(t.host, t.port, t.transport) for t in plain.targets] == [("127.0.0.13", 5060, "udp")]


def test_no_records_and_no_server_are_dns_failures(dnsmasq):
    with pytest.raises(DnsFailure, match="no NAPTR, SRV or A record"):
        resolve("nobody.test", ("127.0.0.1", dnsmasq))
    with pytest.raises(DnsFailure):  # nothing listens there: the query times out
        resolve("hotline.test", ("127.0.0.1", free_udp_port()), timeout=0.5)
