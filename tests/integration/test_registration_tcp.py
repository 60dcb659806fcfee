"""Agents' phones on TCP and on TLS against the sandbox SBC's registrar: each phone REGISTERs
on a connection of its own (its Contact says `transport=tcp`/`tls`), takes a call delivered
over that connection, and when the registrar is SIGKILLed its connection closes under it:
every phone tries again at once (no refresh timer to wait for, the wave that makes a
restart a storm) and is back within its retry timer of the registrar's return, where UDP
phones wait for their refresh."""
import signal
import subprocess
import sys
import time

from harness.lab import certs
from harness.lab.registrar import read_location
from harness.load.agent_desk import AgentDesk
from harness.load.agents import Phones
from harness.metrics.registration import back_after
from harness.sip.digest import Credential
from harness.sip.probe import options_ping
from harness.sip.register import PhoneSpec
from harness.sip.transport import TlsSettings
from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, wait_for
from tests.integration.test_registration import start_registrar

CRED = (Credential("agent", "s3cret-for-phones", "sandbox"),)
AGENTS, EXPIRES, RETRY = 8, 60, 0.5


def test_tcp_phones_take_calls_and_come_back_at_once_after_the_registrar_is_lost(tmp_path):
    port = free_udp_port()
    proc = start_registrar(port, tmp_path)
    desk = AgentDesk("127.0.0.1", ring=0.1).open()
    spec = PhoneSpec(("127.0.0.1", port), "sandbox", expires=EXPIRES, retry=RETRY, timeout=1.0,
                     credentials=CRED, transport="tcp")
    users = [f"agent{i:02d}" for i in range(1, AGENTS + 1)]
    phones = Phones(users, spec, desk=desk)
    location = tmp_path / "location.json"
    try:
        phones.start()
        wait_for(lambda: len(read_location(location)) == AGENTS, 10, what="every phone registered")
        assert all(e["contact"].endswith(";transport=tcp") for e in read_location(location).values())
        rec = place_call(("127.0.0.1", port), CallOptions(hold=0.3, rtp=True, callee=users[0],
                                                          local_ip="127.0.0.1", credentials=CRED))
        assert rec.answered and rec.node == f"sip:{users[0]}@127.0.0.1:{desk.port}", rec
        assert desk.answered[rec.call_id].agent == users[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        lost_at = time.time()
        location.unlink()
        time.sleep(1.0)
        proc = start_registrar(port, tmp_path)
        returned_at = time.time()
        wait_for(lambda: len(read_location(location)) == AGENTS, 10, what="every phone back")
    finally:
        phones.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    back = back_after(phones.attempts, lost_at, users)
    print(f"TCP phones back after the loss: {back}")
    # back within one retry (and the digest round trip) of the registrar's return: long
    # before a UDP phone's refresh (0.8 of 60 s)
    assert back["never"] == [] and back["p99"] <= returned_at - lost_at + RETRY + 0.5
    assert read_location(location) == {}


def test_tls_phones_register_and_leave(tmp_path):
    ca, cert, key = certs.server_certificate(tmp_path / "tls", "sbc.sandbox", "127.0.0.1")
    port, tls_port = free_udp_port(), free_udp_port()
    (tmp_path / "pw").write_text("s3cret-for-phones\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.sbc", "--listen", f"127.0.0.1:{port}",
                             "--node", "pbx-1=127.0.0.1:9", "--health-check", "off",
                             "--auth-user", "agent", "--password-file", str(tmp_path / "pw"),
                             "--tls-port", str(tls_port), "--tls-cert", str(cert),
                             "--tls-key", str(key), "--location-file", str(tmp_path / "location.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: options_ping(("127.0.0.1", port), timeout=0.3) == 200, 10, what="the SBC")
    spec = PhoneSpec(("127.0.0.1", tls_port), "sandbox", expires=EXPIRES, timeout=1.0,
                     credentials=CRED, transport="tls",
                     tls=TlsSettings(ca_file=str(ca), server_name="sbc.sandbox"))
    phones = Phones([f"agent{i:02d}" for i in range(1, 4)], spec)
    try:
        phones.start()
        wait_for(lambda: len(read_location(tmp_path / "location.json")) == 3, 15,
                 what="three TLS phones registered")
        table = read_location(tmp_path / "location.json")
        assert all(e["contact"].endswith(";transport=tls") for e in table.values())
    finally:
        phones.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert read_location(tmp_path / "location.json") == {}
    assert all(a.status == 200 for a in phones.attempts)
