"""An entry point with fallback addresses fails over as a carrier's trunk does (RFC 3263 §4.3).

Ground truth: the first address is one we made silent (a UdpPeer: a bound
socket that reads, counts and never answers: a dead site), or a real SIPp UAS answering 503, or one that sends
100 Trying and then nothing. The setup delay the harness reports must be the
failover timer we set (silence), nearly nothing (503), and no failover at all
once a server has answered (100 Trying).
"""
import subprocess

from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, need, udp_bound, wait_for
from tests.integration.test_sipp_interop import sipp_count
from tests.udppeer import UdpPeer

UAS_ONLY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 {status} {reason}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]uas[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  {then}
</scenario>
"""
ANSWERS_503 = UAS_ONLY.format(name="503", status=503, reason="Service Unavailable",
                              then='<recv request="ACK"/>')
ONLY_TRYING = UAS_ONLY.format(name="100 then silence", status=100, reason="Trying",
                              then='<pause milliseconds="10000"/>')


def sipp(args, calls=1):
    port = free_udp_port()
    proc = subprocess.Popen([need("sipp"), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
                             "-nostdin", "-timeout", "30s"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # the first INVITE must find SIPp listening: a lost one would look like a dead site
    wait_for(lambda: udp_bound(port), within=10, what=f"SIPp bound to udp port {port}")
    return proc, ("127.0.0.1", port)


def test_a_silent_first_address_costs_exactly_the_failover_timer():
    dead = UdpPeer()
    uas, live = sipp(["-sn", "uas"], calls=3)
    try:
        recs = [place_call(dead.addr, CallOptions(hold=0.2, rtp=False, fallback=(live,),
                                                  failover_timer=1.0)) for _ in range(3)]
        out, _ = uas.communicate(timeout=30)
    finally:
        dead.close()
    for rec in recs:
        assert rec.outcome == "completed" and rec.failovers == 1, rec
        assert rec.entry_address == f"{live[0]}:{live[1]}"
        # the call began with the first INVITE: its setup delay holds the timer, and little more
        assert 1.0 <= rec.answered_at - rec.started_at < 1.3, rec.answered_at - rec.started_at
    assert dead.got >= 3 * 2  # each call's INVITE was sent there (and retransmitted at T1)
    assert sipp_count(out, "Successful call") == 3


def test_a_503_fails_over_at_once(tmp_path):
    xml = tmp_path / "503.xml"
    xml.write_text(ANSWERS_503)
    busy, first = sipp(["-sf", str(xml)])
    uas, live = sipp(["-sn", "uas"])
    rec = place_call(first, CallOptions(hold=0.2, rtp=False, fallback=(live,), failover_timer=5.0))
    busy_out, _ = busy.communicate(timeout=30)
    uas.communicate(timeout=30)
    assert rec.outcome == "completed" and rec.failovers == 1, rec
    assert rec.answered_at - rec.started_at < 0.5  # no timer: the 503 said go elsewhere
    assert sipp_count(busy_out, "Successful call") == 1  # it got the ACK for its 503


def test_a_server_that_answered_keeps_the_call(tmp_path):
    xml = tmp_path / "trying.xml"
    xml.write_text(ONLY_TRYING)
    slow, first = sipp(["-sf", str(xml)])
    spare = UdpPeer()
    try:
        rec = place_call(first, CallOptions(hold=0.2, rtp=False, invite_timeout=2.5,
                                            fallback=(spare.addr,), failover_timer=0.5))
    finally:
        spare.close()
        slow.kill()
        slow.communicate()
    assert rec.outcome == "failed" and rec.failovers == 0, rec
    assert rec.reason == "no final response to INVITE (timeout)"
    assert spare.got == 0  # RFC 3263: a 100 Trying means that server has it
    assert rec.entry_address == f"{first[0]}:{first[1]}"


def test_every_address_silent_says_how_far_it_got():
    a, b = UdpPeer(), UdpPeer()
    try:
        rec = place_call(a.addr, CallOptions(hold=0.2, rtp=False, invite_timeout=1.5,
                                             fallback=(b.addr,), failover_timer=0.5))
    finally:
        a.close()
        b.close()
    assert rec.outcome == "failed" and rec.failovers == 1
    assert rec.reason == "no final response to INVITE (timeout) (after 1 failover(s))"
    assert a.got >= 1 and b.got >= 1
