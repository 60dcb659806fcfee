"""Agents' phones against the sandbox SBC's registrar, held to its own location table: twenty
phones register with digest; the registrar is SIGKILLed (it forgets every phone, as an
in-memory location table does) and started again 2 s later; each phone comes back no
sooner than its own refresh timer allows and no later than that timer plus one timed-out
REGISTER and one retry (computed per phone, not guessed); the table then holds all twenty,
and after the un-REGISTERs none."""
import signal
import subprocess
import sys
import time

import pytest

from harness.lab.registrar import read_location
from harness.load.agents import Phones
from harness.metrics.registration import back_after, ira
from harness.sip.digest import Credential
from harness.sip.probe import options_ping
from harness.sip.register import PhoneSpec
from tests.conftest import free_udp_port, wait_for

AGENTS, EXPIRES, REFRESH, RETRY, TIMEOUT, DEAD = 20, 10, 0.8, 1.0, 1.0, 2.0


def start_registrar(port: int, tmp_path, node: str = "127.0.0.1:9") -> subprocess.Popen:
    """The sandbox SBC as a registrar on `port` (its one PBX `node`: none answers by default),
    with digest for user `agent`; its location table in tmp_path/location.json."""
    (tmp_path / "pw").write_text("s3cret-for-phones\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.sbc", "--listen", f"127.0.0.1:{port}",
                             "--node", f"pbx-1={node}", "--health-check", "off",
                             "--auth-user", "agent", "--password-file", str(tmp_path / "pw"),
                             "--location-file", str(tmp_path / "location.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: options_ping(("127.0.0.1", port), timeout=0.3) == 200, 10, what="the registrar")
    return proc


def test_phones_come_back_after_the_registrar_is_lost_as_their_timers_say(tmp_path):
    port = free_udp_port()
    proc = start_registrar(port, tmp_path)
    spec = PhoneSpec(("127.0.0.1", port), "hotline.test", expires=EXPIRES, refresh=REFRESH,
                     retry=RETRY, timeout=TIMEOUT,
                     credentials=(Credential("agent", "s3cret-for-phones", "sandbox"),))
    users = [f"agent{i:02d}" for i in range(AGENTS)]
    phones = Phones(users, spec)
    try:
        phones.start(spread=EXPIRES * REFRESH)  # their refreshes then fall due evenly
        wait_for(lambda: len(read_location(tmp_path / "location.json")) == AGENTS, 15,
                 what="every phone in the location table")
        table = read_location(tmp_path / "location.json")
        assert set(table) == {f"sip:{u}@hotline.test" for u in users}
        assert {e["contact"] for e in table.values()} == \
            {f"sip:{p.user}@127.0.0.1:{p.transport.port}" for p in phones.phones}
        time.sleep(0.5)  # the first phones' refreshes are about to fall due
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        lost_at = time.time()
        (tmp_path / "location.json").unlink()  # what a killed registrar leaves: nothing
        time.sleep(DEAD)
        proc = start_registrar(port, tmp_path)
        returned_at = time.time()  # it answers again (its start takes a moment past DEAD)
        back_by = lost_at + EXPIRES * REFRESH + TIMEOUT + RETRY + 1.0
        wait_for(lambda: len(read_location(tmp_path / "location.json")) == AGENTS,
                 back_by - time.time() + 2, what="every phone back in the table")
    finally:
        phones.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert read_location(tmp_path / "location.json") == {}  # the un-REGISTERs left nothing
    attempts = phones.attempts
    back = back_after(attempts, lost_at, users)
    print(f"back after {back}; IRA {ira(attempts):.3f} of {len(attempts)} REGISTERs")
    assert back["never"] == [] and back["p99"] is not None
    for p in phones.phones:
        ok = [a for a in p.attempts if a.status == 200 and a.expires and a.sent_at < lost_at]
        due = ok[-1].ended_at + ok[-1].expires * REFRESH   # its own refresh timer
        first = next(a for a in p.attempts if a.sent_at >= lost_at and a.status == 200 and a.expires)
        # no sooner than its timer; no later than the timer, or the registrar's return, plus
        # one timed-out REGISTER and one retry (and a little for the digest round trip)
        assert first.sent_at >= due - 0.05, p.user
        assert first.ended_at <= max(due, returned_at) + TIMEOUT + RETRY + 0.5, p.user
    # the phones whose refresh fell in the dead window timed out once each: ineffective
    dead = [a for a in attempts if a.status == 0]
    assert dead and ira(attempts) == pytest.approx(len(dead) / len(
        [a for a in attempts if not (a.status == 200 and a.expires == 0)]))
