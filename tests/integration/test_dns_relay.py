"""The DNS relay (lab/dns_relay.py) in front of a real dnsmasq, each rule as an RFC 3263
resolution through it sees it, per record type and name pattern; the relay's own hit count
is the number of queries the rule answered; a rule removed leaves the answers as they were."""
import subprocess
import sys
import time

import pytest

from harness.faults.base import FaultError
from harness.faults.base import relay_command
from harness.sip.rfc3263 import DnsFailure, resolve
from tests.conftest import free_tcp_port, free_udp_port, wait_for
from tests.integration.conftest import answers


@pytest.fixture
def relay(dnsmasq_server):
    port, control = free_udp_port(), f"127.0.0.1:{free_tcp_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.dns_relay", "--listen",
                             f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{dnsmasq_server[0]}",
                             "--control", control], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    try:
        wait_for(lambda: answers(("127.0.0.1", port)), 10, what="the relay answering")
        yield ("127.0.0.1", port), control, dnsmasq_server[1]
    finally:
        proc.terminate()
        proc.wait(10)


def add(control: str, **rule) -> None:
    relay_command(control, {"op": "add", "toxic": {"name": "r", **rule}})


def hits(control: str) -> int:
    return relay_command(control, {"op": "list"})["toxics"][0]["hits"]


def udp(at) -> list:
    return [(t.host, t.port) for t in resolve("hotline.test", at, transport="udp",
                                              timeout=0.5).targets]


def test_servfail_for_one_record_type_only(relay):
    at, control, _ = relay
    add(control, type="servfail", rtype="NAPTR")
    with pytest.raises(DnsFailure, match="NAPTR hotline.test"):
        resolve("hotline.test", at)
    assert udp(at) == [("127.0.0.11", 5060), ("127.0.0.12", 5070)]  # no NAPTR asked
    assert hits(control) == 1
    relay_command(control, {"op": "remove", "name": "r"})
    add(control, type="servfail", rtype="SRV")
    with pytest.raises(DnsFailure, match="SRV _sip._udp.hotline.test"):
        udp(at)
    relay_command(control, {"op": "remove", "name": "r"})
    assert udp(at) == [("127.0.0.11", 5060), ("127.0.0.12", 5070)]


def test_nxdomain_for_a_pattern_drops_that_target(relay):
    at, control, _ = relay
    add(control, type="nxdomain", match="sbc-b.*", rtype="A")
    assert udp(at) == [("127.0.0.11", 5060)]
    assert hits(control) == 1


def test_drop_times_the_resolver_out_and_delay_makes_it_late(relay):
    at, control, _ = relay
    add(control, type="drop", rtype="NAPTR")
    began = time.monotonic()
    with pytest.raises(DnsFailure, match="NAPTR"):
        resolve("hotline.test", at, timeout=0.5)
    assert time.monotonic() - began >= 0.5
    relay_command(control, {"op": "remove", "name": "r"})
    add(control, type="delay", delay_ms=300, rtype="A")
    began = time.monotonic()
    assert udp(at)
    assert time.monotonic() - began >= 2 * 0.3  # two A records asked, one after the other
    assert hits(control) == 2


def test_wrong_address_and_ttl(relay):
    at, control, _ = relay
    add(control, type="wrong", address="127.0.0.99", rtype="A")
    assert udp(at) == [("127.0.0.99", 5060), ("127.0.0.99", 5070)]
    relay_command(control, {"op": "remove", "name": "r"})
    add(control, type="ttl", ttl=7)
    got = resolve("hotline.test", at, transport="udp")
    assert 5 < got.expires_at - time.time() <= 7  # dnsmasq's own records say 30


def test_stale_answers_outlive_the_server(relay):
    at, control, server = relay
    before = udp(at)
    add(control, type="stale", match="*hotline.test")
    server.terminate()
    server.wait(10)
    assert udp(at) == before  # the DNS server is gone; the answers it gave are not
    assert hits(control) == 3  # SRV, and the two targets' A
    with pytest.raises(DnsFailure):  # never asked before: the dead server is asked
        resolve("plain.test", at, timeout=0.5)


def test_a_bad_rule_is_refused_with_its_reason(relay):
    _, control, _ = relay
    with pytest.raises(FaultError, match="needs address"):
        add(control, type="wrong")
    with pytest.raises(FaultError, match="rtype"):
        add(control, type="drop", rtype="MX")
