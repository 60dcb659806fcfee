"""Digest authentication and TLS against a real Kamailio (`drill lab up --docker --auth --tls`:
its `auth` module challenges every new INVITE with 407, its `tls` module serves carrier-tls
on 5061), judged against Kamailio's own log of its verdict on every call (challenged, ok,
refused) and of which PBX answered each."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.lab import containers
from harness.metrics.voice import call_voice, summary as voice_summary
from harness.report.calls_csv import read_calls_csv
from harness.scenario.load import read_inventory
from harness.sip.uac import HEALTH_CALL_PREFIX
from tests.conftest import generator_first
from tests.e2e.test_lab_flaws import run, truth_check_beside_late_answers

HERE = Path(__file__).parent / "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]
pytestmark = [pytest.mark.xdist_group("lab"), pytest.mark.serial]
VERDICT = re.compile(r"auth (ok|challenged|refused|stale): (\S+)")


@pytest.fixture(scope="module")
def auth_lab(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, generator_first():
        mp.setenv("HOTLINE_DRILL_STATE", str(tmp_path_factory.mktemp("authstate")))
        res = subprocess.run(DRILL + ["lab", "up", "--docker", "--auth", "--tls", "--srtp", "on"],
                             capture_output=True, text=True, timeout=600)
        if res.returncode != 0:  # never skip: no engine or images is a broken set-up
            containers.down()
            pytest.fail(f"the container lab did not come up: {res.stdout[-2000:]}"
                        f"{res.stderr[-2000:]}")
        yield read_inventory(containers.inventory_path())
        containers.down()


def verdicts(since: float) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for _, line in containers.kamailio_log(since):
        if m := VERDICT.search(line):
            out.setdefault(m.group(1), set()).add(m.group(2))
    return out


def test_a_pbx_kill_through_kamailios_auth_and_tls_modules(auth_lab, tmp_path):
    inv = auth_lab
    assert all(e.auth and e.auth[0].realm == "lab" for e in inv.entry_points)
    assert inv.find("carrier-tls").transport == "tls"
    assert {e.srtp for e in inv.entry_points} == {"require"}
    began = time.time()
    sessions_before = containers.rtpengine_managed()
    code, summary, calls, logged = run(HERE / "lab-auth-node-loss.yaml", tmp_path)
    assert len(calls) >= 60
    assert summary["counts"]["challenged"] == len(calls)
    assert summary["counts"].get("auth_failed") == 0
    # Kamailio's own verdicts: it challenged each of the drill's calls once and let each
    # through with the harness's credentials; it refused none (nor a health check's call)
    seen = verdicts(began - 1)
    # (a run the generator could not keep to its schedule, run again, sent Kamailio calls too)
    ids = {c.call_id for d in tmp_path.iterdir() if (d / "calls.csv").exists()
           for c in read_calls_csv(d / "calls.csv")}
    assert {c.call_id for c in calls} <= ids
    drills = lambda kind: {c for c in seen.get(kind, set()) if not c.startswith(HEALTH_CALL_PREFIX)}  # noqa: E731
    assert drills("challenged") == ids and drills("ok") == ids
    assert not seen.get("refused")
    assert any(c.startswith(HEALTH_CALL_PREFIX) for c in seen.get("ok", ()))  # the steady check's
    # who answered each call: Kamailio's record, call by call, as without authentication
    truth_check_beside_late_answers(calls, inv, logged)
    assert {c.node for c in calls if c.answered} == {"pbx-1", "pbx-2"}
    # over Kamailio's TLS listener as over UDP: answered by both nodes, on one connection
    # that Kamailio kept open for the whole drill (one handshake, every other call reused it)
    tls = [c for c in calls if c.carrier == "carrier-tls"]
    assert len(tls) >= 15 and sum(c.tls_handshake_ms is not None for c in tls) == 1
    assert sum(c.tls_reused for c in tls) == len(tls) - 1
    # the kill as the TLS carrier saw it is what the UDP carriers saw (every call answered
    # through Kamailio's failover, in the runs seen: 24 of 24 over TLS, 73 of 73 over UDP)
    udp = [c for c in calls if c.carrier != "carrier-tls"]
    share = lambda group: sum(c.answered for c in group) / len(group)  # noqa: E731
    assert abs(share(tls) - share(udp)) <= 0.05, (share(tls), share(udp))
    # SRTP to rtpengine and back on every carrier: the lab's PBX echoes what it gets in the
    # clear, so our own packets came back, decrypted by rtpengine, echoed, encrypted again
    # under the key rtpengine answered, and read by us with their send stamps intact (the
    # round trip); rtpengine's own count of the sessions it relayed covers every media call
    media = [c for c in calls if c.answered and c.rtp_expected]
    assert media and all(c.srtp and c.srtp_auth_failed == 0 for c in media)
    assert all(c.rtp_echo and c.rtp_received > 0 and c.rtp_rtt_ms is not None for c in media)
    assert containers.rtpengine_managed() - sessions_before >= len(media)
    # carrier-a's 5 % loss over SRTP shows on carrier-a, as over RTP, and on no other: judged
    # on the calls pbx-2 answered (pbx-1's calls lost their media to the kill)
    for carrier in sorted({c.carrier for c in media}):
        kept = voice_summary([call_voice(c) for c in media
                              if c.carrier == carrier and c.node == "pbx-2"])
        want = (0.03, 0.07) if carrier == "carrier-a" else (0.0, 0.01)
        assert kept["calls"] >= 8 and want[0] <= kept["loss_down"] <= want[1], (carrier, kept)
    assert summary["voice"]["overall"]["srtp_failed"] == 0
    assert {c.node for c in tls if c.answered} == {"pbx-1", "pbx-2"}
    assert sum(c.answered for c in tls) / len(tls) >= summary["answer_rate"] - 0.1


def test_a_wrong_password_is_exit_2_before_any_fault(auth_lab, tmp_path):
    data = yaml.safe_load(containers.inventory_path().read_text())
    for e in data["entry_points"]:
        e["auth"] = {"username": "drill", "password": "${HD_LAB_WRONG}", "realm": "lab"}
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
    scenario = (HERE / "lab-auth-node-loss.yaml").read_text().replace("target: lab",
                                                                         "target: inv.yaml")
    (tmp_path / "s.yaml").write_text(scenario)
    began = time.time()
    res = subprocess.run(DRILL + ["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HD_LAB_WRONG": "wrong-password-5150"})
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "credentials refused by realm lab" in out and "nothing injected" in out, out
    assert "carrier-a" in out and "wrong-password-5150" not in out
    # Kamailio refused the steady check's calls; no drill call and no fault followed (its
    # log from this run's start: the test before ended its own drill within the second)
    seen = verdicts(began)
    assert seen.get("refused") and all(c.startswith(HEALTH_CALL_PREFIX) for c in seen["refused"])
    assert not seen.get("ok")
    assert all(b.status == "running" for b in containers.client().containers.list(
        filters={"label": containers.LABEL}) if b.name == "hd-lab-pbx-1")
