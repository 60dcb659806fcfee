"""RFC 3263 against a real DNS server (Debian's dnsmasq, on a port of its own): NAPTR names
the transports in order, SRV gives the targets by priority, A their addresses; the
resolution expires with the records' TTL; a name with no records is a DnsFailure, as is a
server that does not answer."""
import shutil
import subprocess
import time

import pytest

from harness.sip.rfc3263 import DnsFailure, resolve
from tests.conftest import free_udp_port, wait_for


@pytest.fixture
def dnsmasq():
    port = free_udp_port()
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    proc = subprocess.Popen([exe, "--no-daemon", "--port", str(port), "--listen-address",
                             "127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                             "--local=/test/", "--local-ttl=30",
                             "--naptr-record=hotline.test,10,50,s,SIP+D2T,,_sip._tcp.hotline.test",
                             "--naptr-record=hotline.test,20,50,s,SIP+D2U,,_sip._udp.hotline.test",
                             "--srv-host=_sip._udp.hotline.test,sbc-a.hotline.test,5060,10,0",
                             "--srv-host=_sip._udp.hotline.test,sbc-b.hotline.test,5070,20,0",
                             "--srv-host=_sip._tcp.hotline.test,sbc-a.hotline.test,5060,10,0",
                             "--host-record=sbc-a.hotline.test,127.0.0.11",
                             "--host-record=sbc-b.hotline.test,127.0.0.12",
                             "--host-record=plain.test,127.0.0.13"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def answers():
        try:
            resolve("plain.test", ("127.0.0.1", port), timeout=0.3)
            return True
        except DnsFailure:
            return False
    try:
        wait_for(answers, 10, what="dnsmasq answering")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


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
