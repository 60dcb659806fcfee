"""Interoperability with a real SIP tool: SIPp (Debian's sip-tester) as caller and as callee."""
import json
import re
import subprocess
import sys

from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, need


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
