"""Fixtures shared by the integration tests: real servers on ports of their own."""
import shutil
import subprocess

import pytest

from harness.sip.rfc3263 import DnsFailure, resolve
from tests.conftest import free_udp_port, wait_for


def answers(at: tuple[str, int]) -> bool:
    """Whether DNS at `at` resolves plain.test (dnsmasq, or a relay in front of it)."""
    try:
        resolve("plain.test", at, timeout=0.3)
        return True
    except DnsFailure:
        return False


@pytest.fixture
def dnsmasq_server():
    """Debian's dnsmasq answering for .test on a port of its own: (its port, its process)."""
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
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        wait_for(lambda: answers(("127.0.0.1", port)), 10, what="dnsmasq answering")
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def dnsmasq(dnsmasq_server):
    """The port of dnsmasq answering for .test."""
    return dnsmasq_server[0]
