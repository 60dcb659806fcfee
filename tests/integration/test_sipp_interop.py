"""Interoperability with a real SIP tool: SIPp (Debian's sip-tester) as caller and as callee."""
import json
import re
import subprocess
import sys

from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, need, wait_for


def sipp_count(output: str, label: str) -> int:
    """The cumulative column of a line of SIPp's final statistics screen."""
    m = re.search(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", output)
    assert m, f"no '{label}' in SIPp output:\n{output[-2000:]}"
    return int(m.group(1))


def test_sandbox_answers_a_sipp_uac(sandbox_up):
    sipp = need("sipp")
    carrier = sandbox_up.entry_points[0]
    out = subprocess.run([sipp, "-sn", "uac", carrier.address, "-i", "127.0.0.1",
                          "-p", str(free_udp_port()), "-m", "20", "-r", "10", "-d", "300",
                          "-timeout", "30s", "-nostdin"],
                         capture_output=True, text=True, timeout=60)
    screen = out.stdout + out.stderr
    assert sipp_count(screen, "Successful call") == 20
    assert sipp_count(screen, "Failed call") == 0
    assert out.returncode == 0


def _sipp_uas(n_calls: int):
    sipp = need("sipp")
    port = free_udp_port()
    proc = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port),
                             "-m", str(n_calls), "-nostdin", "-timeout", "60s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port


def test_our_uac_completes_calls_against_sipp_uas():
    proc, port = _sipp_uas(5)
    recs = [place_call(("127.0.0.1", port), CallOptions(hold=0.2, rtp=False)) for _ in range(5)]
    out, _ = proc.communicate(timeout=30)
    assert [r.outcome for r in recs] == ["completed"] * 5
    assert all(r.pdd is not None and r.bye_status == 200 for r in recs)
    assert sipp_count(out, "Successful call") == 5  # SIPp's own count agrees with ours
    assert proc.returncode == 0


def test_load_generator_completes_calls_against_sipp_uas():
    """Locust-driven load (the drill's own) against SIPp: SIPp counts the same calls we do."""
    proc, port = _sipp_uas(12)
    load = subprocess.run([sys.executable, "-m", "harness.load.standalone", "--entry",
                           f"127.0.0.1:{port}", "--cps", "4", "--hold", "0.5", "--seconds", "30",
                           "--calls", "12"],
                          capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stderr
    figures = json.loads(load.stdout.strip().splitlines()[-1])
    out, _ = proc.communicate(timeout=30)
    assert figures["attempts"] == 12 and figures["completed"] == 12, figures
    assert sipp_count(out, "Successful call") == figures["completed"]


def test_sandbox_answers_a_sipp_uac_over_tcp(sandbox_up):
    sipp = need("sipp")
    sbc = sandbox_up.find("sbc").sip
    out = subprocess.run([sipp, "-sn", "uac", "-t", "t1", sbc, "-i", "127.0.0.1",
                          "-p", str(free_udp_port()), "-m", "10", "-r", "5", "-d", "300",
                          "-timeout", "30s", "-nostdin"],
                         capture_output=True, text=True, timeout=60)
    screen = out.stdout + out.stderr
    assert sipp_count(screen, "Successful call") == 10
    assert out.returncode == 0


def test_our_uac_over_tcp_through_the_sbc(sandbox_up):
    host, port = sandbox_up.find("sbc").sip.rsplit(":", 1)
    recs = [place_call((host, int(port)), CallOptions(hold=0.3, transport="tcp")) for _ in range(4)]
    assert [r.outcome for r in recs] == ["completed"] * 4
    assert {r.node.split("@")[0] for r in recs} == {"sip:pbx-1", "sip:pbx-2"}  # both nodes, round-robin
    assert all(r.rtp_received > 0 for r in recs)
    refused = place_call(("127.0.0.1", free_udp_port()), CallOptions(hold=0.1, transport="tcp"))
    assert refused.outcome == "failed" and "cannot connect" in refused.reason


def test_tcp_peer_that_closes_fails_the_call_without_waiting_out_the_timeout():
    """A closed TCP connection ends the INVITE transaction (no busy wait until the timeout)."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def accept_and_close():
        conn, _ = srv.accept()
        conn.recv(65535)
        conn.close()

    threading.Thread(target=accept_and_close, daemon=True).start()
    rec = place_call(srv.getsockname(), CallOptions(hold=0.1, transport="tcp", invite_timeout=30))
    srv.close()
    assert rec.outcome == "failed" and rec.reason == "connection closed by the peer"


def test_the_sipp_engine_keeps_a_call_whose_180_comes_after_its_200(tmp_path):
    """An SBC may relay a 180 after the 200 it followed (Kamailio's workers share one TCP
    connection; UDP reorders too). SIPp would abort such an answered call as "unexpected
    message" and log no outcome; the engine has it carry on: answered and completed, as the
    far end (here a peer that sends 100, 200, then 180) and its own count say."""
    from harness.load.sipp_engine import SippLoad
    from harness.scenario.inventory import EntryPoint
    from harness.scenario.model import LoadSpec
    from tests.udppeer import UdpPeer
    need("sipp")
    answered, byes = [], []

    def far_end(data: bytes, sender) -> None:
        text = data.decode(errors="replace")
        head = dict(line.split(":", 1) for line in text.split("\r\n")[1:] if ":" in line)
        head = {k.strip().lower(): v.strip() for k, v in head.items()}

        def reply(status: str, body: str = "") -> None:
            msg = (f"SIP/2.0 {status}\r\nVia: {head['via']}\r\nFrom: {head['from']}\r\n"
                   f"To: {head['to']};tag=far\r\nCall-ID: {head['call-id']}\r\n"
                   f"CSeq: {head['cseq']}\r\nContact: <sip:{peer.addr[0]}:{peer.addr[1]}>\r\n")
            msg += (f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                    if body else "Content-Length: 0\r\n\r\n")
            peer.sock.sendto(msg.encode(), sender)

        if text.startswith("INVITE") and head["call-id"] not in answered:
            answered.append(head["call-id"])
            reply("100 Trying")
            reply("200 OK", "v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                            "t=0 0\r\nm=audio 9 RTP/AVP 0\r\n")
            reply("180 Ringing")  # after the 200 it should have come before
        elif text.startswith("BYE"):
            byes.append(head["call-id"])
            reply("200 OK")

    peer = UdpPeer(far_end)
    records = []
    try:
        spec = LoadSpec.model_validate({"calls_per_second": 4, "hold": "300ms", "rtp_share": "0%"})
        entry = EntryPoint(name="carrier-a", address=f"{peer.addr[0]}:{peer.addr[1]}")
        load = SippLoad(spec, [entry], records.append, lambda contact: "far-end", tmp_path, 2.0)
        load.start()
        wait_for(lambda: len(answered) >= 6, 20, what="six calls answered by the far end")
        load.stop(wait=5)
    finally:
        peer.close()
    assert len(records) == len(answered) >= 6
    assert all(r.outcome == "completed" and r.status == 200 and r.node == "far-end"
               for r in records), [(r.outcome, r.reason) for r in records]
    assert sorted(r.call_id for r in records) == sorted(byes)  # each ended by our BYE
    assert load.totals["carrier-a"]["sipp_successful"] == len(records)  # SIPp's own count
