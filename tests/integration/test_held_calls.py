"""Held calls keep no caller: the load generator against a real SIPp UAS.

An answered call's hold is handed to a timer and its RTP to the media pump, so
the Locust callers are busy only from INVITE to ACK. These tests check what
that must not change: every call still ends with its BYE and is counted once,
a far end that hangs up is seen at the moment it did, and a run stopped short
leaves no call, socket or record behind.
"""
import json
import subprocess
import sys
import textwrap

from tests.conftest import free_udp_port, need
from tests.integration.test_sipp_interop import sipp_count

UAS_HANGS_UP = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas hangs up after 500 ms">
  <recv request="INVITE">
    <action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]uas[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=uas 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK"/>
  <pause milliseconds="500"/>
  <send><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:hotline@[local_ip]:[local_port]>;tag=[pid]uas[call_number]
To: [$caller]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
"""


def sipp_uas(args: list[str]):
    port = free_udp_port()
    proc = subprocess.Popen([need("sipp"), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                             "-timeout", "60s", "-max_socket", "2000"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port


def test_a_far_end_hanging_up_is_seen_when_it_did(tmp_path):
    from harness.sip.uac import CallOptions, place_call
    xml = tmp_path / "uas-hangs-up.xml"
    xml.write_text(UAS_HANGS_UP)
    proc, port = sipp_uas(["-sf", str(xml), "-m", "1"])
    rec = place_call(("127.0.0.1", port), CallOptions(hold=3.0, rtp=False))
    out, _ = proc.communicate(timeout=30)
    assert rec.outcome == "dropped" and rec.reason == "remote hung up", rec
    assert rec.bye_sent_at is None  # no BYE of ours after theirs
    # the end is the far end's BYE, 0.5 s after it answered, not the planned 3 s hold
    assert 0.45 <= rec.ended_at - rec.answered_at <= 0.9, rec.ended_at - rec.answered_at
    assert sipp_count(out, "Successful call") == 1  # SIPp got our 200 OK to its BYE
    assert proc.returncode == 0, out[-2000:]


def test_held_calls_need_no_callers_and_all_end_with_their_bye():
    proc, port = sipp_uas(["-sn", "uas", "-m", "60"])
    load = subprocess.run([sys.executable, "-m", "harness.load.standalone", "--entry",
                           f"127.0.0.1:{port}", "--cps", "20", "--hold", "3", "--seconds", "30",
                           "--calls", "60", "--rtp-share", "0.5"],
                          capture_output=True, text=True, timeout=90)
    out, _ = proc.communicate(timeout=30)
    assert load.returncode == 0, load.stderr
    fig = json.loads(load.stdout.strip().splitlines()[-1])
    assert fig["attempts"] == fig["completed"] == 60, fig
    assert sipp_count(out, "Successful call") == 60  # every BYE reached SIPp and was answered
    # about 60 calls were held at once by fewer callers than that: a held call keeps none (when
    # each kept its caller, the pool had to be at least as large as the calls held)
    assert fig["peak_in_flight"] >= 45, fig
    assert fig["peak_callers"] < fig["peak_in_flight"] - 10, fig
    # the media calls carried RTP for their whole hold (SIPp's UAS sends none: only ours counts)
    assert fig["rtp"]["calls"] >= 15 and fig["rtp"]["sent"] >= fig["rtp"]["calls"] * 145, fig


ABORT = textwrap.dedent("""
    import json, os, sys, time
    from harness.load.sip_load import LoadController
    from harness.scenario.inventory import EntryPoint
    from harness.scenario.model import LoadSpec
    records = []
    spec = LoadSpec(calls_per_second=20, hold=30, rtp_share=1.0)
    load = LoadController(spec, [EntryPoint(name="e", address=sys.argv[1])], records.append,
                          node_of=lambda c: c, seed=1, max_calls=10)
    fds = len(os.listdir("/proc/self/fd"))
    load.start()
    deadline = time.time() + 20
    while (load.placed < 10 or len(load._held) < 10) and time.time() < deadline:
        time.sleep(0.05)
    held = len(load._held)
    load.abort()  # the calls were all in their hold: closed here and now, no greenlet to wait for
    print(json.dumps({"held": held, "in_flight": load.in_flight, "records": len(records),
                      "fds_before": fds, "fds_after": len(os.listdir("/proc/self/fd"))}))
""")


def test_an_aborted_run_leaves_no_held_call_behind():
    proc, port = sipp_uas(["-sn", "uas", "-m", "10"])
    try:
        res = subprocess.run([sys.executable, "-c", ABORT, f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert res.returncode == 0, res.stderr
    fig = json.loads(res.stdout.strip().splitlines()[-1])
    assert fig["held"] == 10, fig
    assert fig["in_flight"] == 0 and fig["records"] == 0, fig
    # every call's two sockets closed (Locust's own may stay: at most a few)
    assert fig["fds_after"] - fig["fds_before"] < 10, fig
