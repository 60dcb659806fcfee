"""Drills through an SBC that challenges every new INVITE (407, digest), as SBCs guard carrier
trunks: the sandbox SBC with `auth: true`, judged against the SBC's own log of every call it
challenged and let through."""
import json
import os
import re
import subprocess
import sys

import pytest

from harness.lab import sandbox
from harness.ops.procs import read_pid
from harness.report.calls_csv import read_calls_csv
from harness.sip.uac import HEALTH_CALL_PREFIX
from tests.conftest import last_run, staging_kill_drill

DRILL = [sys.executable, "-m", "harness.cli"]
VERDICT = re.compile(r"auth (ok|challenged|refused|stale nonce): (\S+)")

SCENARIO = """\
name: auth-node-loss
target: sandbox
sandbox: {auth: true}
duration: 12s
seed: 5
load:
  calls_per_second: 4
  hold: 2s
faults:
  - id: kill-pbx-1
    type: process.kill
    target: pbx-1
    at: 4s
    duration: 4s
sla:
  answer_rate: 80%
"""


def drill(*args, env=None):
    return subprocess.run(DRILL + list(args), capture_output=True, text=True, timeout=240, env=env)


def sbc_log(cfg: sandbox.SandboxConfig) -> dict[str, set[str]]:
    """The SBC's own verdict on each Call-ID (its log), health checks' calls left out."""
    out: dict[str, set[str]] = {}
    for verdict, call_id in VERDICT.findall((cfg.folder / "sbc.log").read_text()):
        if not call_id.startswith(HEALTH_CALL_PREFIX):
            out.setdefault(verdict, set()).add(call_id)
    return out


def test_a_node_loss_drill_through_an_sbc_that_challenges_every_call(isolated, tmp_path):
    path = tmp_path / "auth.yaml"
    path.write_text(SCENARIO)
    res = drill("run", str(path), "-o", str(tmp_path / "out"))
    assert res.returncode in (0, 1), res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    summary = json.loads((run / "summary.json").read_text())
    calls = read_calls_csv(run / "calls.csv")
    assert len(calls) >= 40
    # every call was challenged once and answered the challenge; none failed on it
    assert summary["counts"]["challenged"] == len(calls) and summary["counts"]["auth_failed"] == 0
    assert all(c.challenged and c.cause == "" for c in calls)
    # the SBC's own account: it challenged every one of the drill's calls and let each through
    # once its credentials came, and refused none
    seen = sbc_log(sandbox.SandboxConfig())
    # (an inconclusive run before it, run again on a busy machine, sent the SBC calls too)
    ids = {c.call_id for run_dir in (tmp_path / "out").iterdir() if run_dir.is_dir()
           for c in read_calls_csv(run_dir / "calls.csv")}
    assert {c.call_id for c in calls} <= ids
    assert seen.get("challenged") == ids and seen.get("ok") == ids
    assert not seen.get("refused")
    # the kill still shows as what it is: calls moved to pbx-2 and were answered
    assert summary["counts"]["answered"] >= 0.8 * len(calls)
    assert {c.node for c in calls if c.answered} == {"pbx-1", "pbx-2"}
    # the password is in no output
    password = (sandbox.SandboxConfig().folder / sandbox.SBC_PASSWORD).read_text().strip()
    for f in run.iterdir():
        if f.is_file():
            assert password not in f.read_text(errors="replace"), f.name


@pytest.mark.parametrize("auth, says", [
    ({"username": "drill", "password": "${HD_WRONG_PASSWORD}", "realm": "sandbox"},
     "credentials refused by realm sandbox"),
    (None, "no credentials for realm sandbox"),
])
def test_refused_credentials_are_exit_2_naming_entry_point_and_realm(isolated, tmp_path, auth,
                                                                      says):
    cfg = sandbox.SandboxConfig(auth=True)
    inv = sandbox.up(cfg)
    entry = inv.entry_points[0].model_dump(exclude_none=True, exclude_defaults=True)
    entry.pop("auth", None)
    if auth:
        entry["auth"] = auth
    scenario = staging_kill_drill(tmp_path, inv, entry, "wrong-password")
    pid = read_pid(inv.find("pbx-1").process.pidfile)
    env = {**isolated, "HD_WRONG_PASSWORD": "not-the-password-1234"}
    res = drill("run", str(scenario), "-o", str(tmp_path / "out"), env={**os.environ, **env})
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "carrier-a" in out and says in out and "nothing injected" in out, out
    assert "not-the-password-1234" not in out
    assert read_pid(inv.find("pbx-1").process.pidfile) == pid  # pbx-1 was never killed
    seen = open(cfg.folder / "sbc.log").read()
    assert ("auth refused: " + HEALTH_CALL_PREFIX in seen) == bool(auth)


SIPP_SCENARIO = """\
name: sipp-auth
target: sandbox
sandbox: {auth: true}
duration: 8s
load:
  engine: sipp
  calls_per_second: 4
  hold: 1s
  invite_timeout: 4s
  bye_timeout: 2s
sla:
  answer_rate: 90%
"""


def test_the_sipp_engine_answers_the_challenge_with_sipps_own_digest(isolated, tmp_path):
    path = tmp_path / "sipp-auth.yaml"
    path.write_text(SIPP_SCENARIO)
    res = drill("run", str(path), "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    calls = read_calls_csv(run / "calls.csv")
    totals = [json.loads(line)["sipp_successful"] for line in open(run / "events.jsonl")
              if '"sipp_totals"' in line]
    assert len(calls) >= 25 and all(c.challenged and c.outcome == "completed" for c in calls)
    assert sum(totals) == len(calls)  # SIPp's own count of successful calls
    seen = sbc_log(sandbox.SandboxConfig())
    # (an inconclusive run before it, run again on a busy machine, sent the SBC calls too)
    ids = {c.call_id for run_dir in (tmp_path / "out").iterdir() if run_dir.is_dir()
           for c in read_calls_csv(run_dir / "calls.csv")}
    assert {c.call_id for c in calls} <= ids
    assert seen.get("challenged") == ids and seen.get("ok") == ids and not seen.get("refused")
    # SIPp's password file lived outside the run folder and is gone
    password = (sandbox.SandboxConfig().folder / sandbox.SBC_PASSWORD).read_text().strip()
    assert not any(password in f.read_text(errors="replace") for f in run.rglob("*")
                   if f.is_file())
