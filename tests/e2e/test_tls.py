"""SIP over TLS (RFC 3261 §26, RFC 5630) against the sandbox SBC's TLS listener, with its
certificate from the sandbox's own CA: calls, a drill, and certificates that must be refused
(another name, an unknown CA), each named."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import yaml

from harness.lab import sandbox
from harness.load.entry_calls import call_options, tls_settings
from harness.faults.base import lookup
from harness.metrics.calls import counts
from harness.report.calls_csv import read_calls_csv
from harness.sip.tls import certificate_problem
from harness.sip.transport import TlsSettings
from harness.sip.uac import place_call
from tests.conftest import run_scenario, staging_kill_drill

DRILL = [sys.executable, "-m", "harness.cli"]


def test_calls_over_tls_share_one_connection_and_time_its_handshake(isolated):
    inv = sandbox.up(sandbox.SandboxConfig(tls=True))
    entry = next(e for e in inv.entry_points if e.name == "carrier-tls")
    assert entry.transport == "tls" and entry.tls.ca_file
    recs = [place_call(entry.addr, call_options(entry, hold=0.3, rtp=True, invite_timeout=4,
                                                bye_timeout=2), entry.name) for _ in range(3)]
    assert [r.outcome for r in recs] == ["completed"] * 3, [r.reason for r in recs]
    # one connection for the three, as a carrier's trunk keeps it: the first call's handshake
    assert [r.tls_reused for r in recs] == [False, True, True]
    assert 0 < recs[0].tls_handshake_ms < 2000 and recs[1].tls_handshake_ms is None
    assert all(r.rtp_received > 0 for r in recs)  # media flows as on the other carriers
    # the certificate is checked: the right name and CA pass; another name, or no CA, is
    # refused naming the certificate the server sent
    local = inv.find("sbc").sip.rsplit(":", 1)[0]
    assert certificate_problem(entry.addr, local, tls_settings(entry)) is None
    wrong = certificate_problem(entry.addr, local, TlsSettings(entry.tls.ca_file,
                                                               server_name="sbc.elsewhere"))
    assert "sbc.elsewhere" in wrong and "CN=sbc.sandbox" in wrong and "names [sbc.sandbox," in wrong
    unknown = certificate_problem(entry.addr, local, TlsSettings(server_name="sbc.sandbox"))
    assert "certificate refused" in unknown and "issued by CN=hotline-drill sandbox CA" in unknown
    opts = call_options(entry, hold=0.3, rtp=False, invite_timeout=4, bye_timeout=2)
    rec = place_call(entry.addr, replace(opts, tls=TlsSettings(entry.tls.ca_file,
                                                               server_name="x.example")))
    assert rec.outcome == "failed" and "x.example" in rec.reason, rec.reason


SCENARIO = """\
name: tls-auth-node-loss
target: sandbox
sandbox: {tls: true, auth: true, srtp: on}
duration: 12s
seed: 7
load:
  calls_per_second: 4
  hold: 2s
  carriers: [carrier-a, carrier-tls]
faults:
  - {id: kill-pbx-1, type: process.kill, target: pbx-1, at: 4s, duration: 4s}
sla:
  answer_rate: 80%
"""


def test_a_node_loss_drill_over_tls_with_digest_and_srtp(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, yaml.safe_load(SCENARIO))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    calls = read_calls_csv(run / "calls.csv")
    tls = [c for c in calls if c.carrier == "carrier-tls"]
    # the drill's TLS calls shared one connection (the SBC stayed up): one handshake
    assert len(tls) >= 15 and sum(c.tls_handshake_ms is not None for c in tls) == 1
    assert sum(c.tls_reused for c in tls) == len(tls) - 1
    assert summary["counts"]["tls_connections"] == 1
    assert all(c.tls_handshake_ms is None and not c.tls_reused for c in calls
               if c.carrier == "carrier-a")
    # over TLS as over UDP: every call challenged, the kill's calls moved to pbx-2
    assert summary["counts"]["challenged"] == len(calls)
    assert {c.node for c in tls if c.answered} == {"pbx-1", "pbx-2"}
    assert sum(c.answered for c in tls) >= 0.8 * len(tls)
    # the SBC's own log: it let every one of the drill's calls through after the challenge
    log = (sandbox.SandboxConfig().folder / "sbc.log").read_text()
    assert all(f"auth ok: {c.call_id}" in log for c in calls)
    # every answered call's media was SRTP to the SBC (it ends SRTP; the PBXs get RTP), and
    # none of its packets failed authentication: the voice is judged as over plain RTP
    media = [c for c in calls if c.answered and c.media and c.rtp_expected]
    assert media and all(c.srtp and c.srtp_auth_failed == 0 for c in media)
    voice = summary["voice"]["overall"]
    assert voice["srtp_calls"] == len(media) and voice["srtp_failed"] == 0
    # judged by default, as the calls were SRTP: passed, with nothing failed
    judged = {v["target"]: v for v in summary["verdicts"]}["srtp_failed"]
    assert judged["passed"] and judged["measured"] == 0
    # the SBC's own count (written when the drill stopped the sandbox): it ended the SRTP of
    # every one of them (and of the steady-state checks' test calls), none failing
    srtp = json.loads((sandbox.SandboxConfig().folder / "sbc.stats.json").read_text())["_srtp"]
    assert srtp["calls"] >= len(media) and srtp["auth_failed"] == 0, srtp


def test_a_certificate_for_another_name_is_exit_2_naming_it(isolated, tmp_path):
    inv = sandbox.up(sandbox.SandboxConfig(tls=True))
    entry = next(e for e in inv.entry_points if e.name == "carrier-tls")
    data = entry.model_dump(exclude_none=True, exclude_defaults=True)
    data["transport"] = "tls"
    data["tls"] = {"ca_file": entry.tls.ca_file, "server_name": "sbc.staging.example"}
    scenario = staging_kill_drill(tmp_path, inv, data, "wrong-name")
    res = subprocess.run(DRILL + ["run", str(scenario), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, env=os.environ)
    out = " ".join((res.stdout + res.stderr).split())  # the console wraps long lines
    assert res.returncode == 2, out
    assert "carrier-tls" in out and "sbc.staging.example" in out and "CN=sbc.sandbox" in out, out
    assert "nothing injected" in out


def test_a_lost_trunk_connection_is_opened_again_and_counted(isolated):
    """The SBC restarts: the trunk's connection is gone; the next call opens another, and
    says so (its own handshake), where a connection per call would hide the loss."""
    cfg = sandbox.SandboxConfig(tls=True)
    inv = sandbox.up(cfg)
    entry = next(e for e in inv.entry_points if e.name == "carrier-tls")
    opts = call_options(entry, hold=0.2, rtp=False, invite_timeout=4, bye_timeout=2)
    first = place_call(entry.addr, opts, entry.name)
    kill = lookup("process.kill")  # the real injector: SIGKILL, then its undo starts it again
    injector = kill("sbc-restart", inv.find("sbc"), kill.Params.model_validate({}))
    recipe = injector.recipe()
    injector.inject()
    assert injector.verify()  # gone
    kill.undo(recipe)  # back once it answers SIP OPTIONS again
    after = [place_call(entry.addr, opts, entry.name) for _ in range(2)]
    assert [r.outcome for r in [first, *after]] == ["completed"] * 3, [r.reason for r in after]
    assert [r.tls_reused for r in [first, *after]] == [False, False, True]
    assert after[0].tls_handshake_ms is not None
    assert counts([first, *after])["tls_connections"] == 2
    # a connection per call, when the inventory asks for it
    single = replace(opts, tls=replace(opts.tls, reuse=False))
    alone = [place_call(entry.addr, single, entry.name) for _ in range(2)]
    assert [r.tls_reused for r in alone] == [False, False]
    assert all(r.tls_handshake_ms for r in alone)
