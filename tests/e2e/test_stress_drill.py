"""Resource faults on the sandbox, checked against the kernel's and the nodes' own counts.

- stress.cpu: two hogs share a cgroup of 0.1 core with pbx-1 for 8 s. The cgroup's own
  account is the known cause: it used 0.1 core for as long as it stood, and the quota
  throttled it in nearly every 100 ms period; pbx-1's post-dial delay rose while it lasted and
  came back after.
- stress.fd: pbx-1's open-file limit cut to what it holds. Each 503 it sent for want of a
  descriptor (its own count) is one the SBC logged trying the next node for, and each of
  those calls was answered by pbx-2; no caller lost a call.
- A drill SIGKILLed with stress.cpu, stress.fd and stress.disk in place: `drill recover`
  stops the stressor, puts pbx-1 back in its cgroup, restores its limit, deletes the file."""
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.lab import sandbox
from harness.ops.procs import proc_state, read_pid
from harness.report.calls_csv import read_calls_csv
from harness.runner.journal import Journal
from tests.conftest import run_scenario, sigkill_after_injections

DRILL = [sys.executable, "-m", "harness.cli"]


def scenario(name: str) -> dict:
    return yaml.safe_load(open(f"scenarios/{name}.yaml"))


def rolled_back(run: Path) -> dict:
    return next(e for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())
                if e["event"] == "fault_rolled_back")


def test_cpu_hogs_in_a_tenth_of_a_core_delay_the_pbx_by_the_cgroups_own_account(isolated,
                                                                              tmp_path):
    res, run, summary = run_scenario(tmp_path, scenario("sandbox-pbx-cpu-starved"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    f = summary["faults"][0]
    note = rolled_back(run)["note"]
    used, throttled = re.search(r"used ([0-9.]+) CPU s, throttled (\d+) periods", note).groups()
    stood = f["undo_started"] - f["started_at"]
    # the quota is the cause: 0.1 core for as long as the cgroup stood (its own account,
    # rounded to 0.1 s), throttled in (nearly) every 100 ms period of it; the group stands
    # from before the injection is confirmed until the rollback has stopped the hogs
    assert float(used) == pytest.approx(0.1 * stood, abs=0.15), note
    assert 0.8 * stood / 0.1 <= int(throttled) <= stood / 0.1 + 3, note
    calls = read_calls_csv(run / "calls.csv")
    assert all(c.answered for c in calls)

    def pdd(lo, hi):
        return statistics.median(c.pdd for c in calls if lo < c.started_at < hi)
    before, starved = pdd(0, f["started_at"]), pdd(f["started_at"] + 1, f["undo_started"])
    after = pdd(f["ended_at"] + 1, float("inf"))
    print(f"PDD p50 before {before * 1000:.0f} ms, starved {starved * 1000:.0f} ms, after "
          f"{after * 1000:.0f} ms; {note}")
    assert starved > 3 * before and after < 2 * before


def test_a_pbx_out_of_descriptors_answers_503_and_the_sbc_moves_those_calls(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, scenario("sandbox-pbx-out-of-descriptors"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    folder = sandbox.SandboxConfig().folder
    refused = json.loads((folder / "pbx-1.stats.json").read_text()).get("no_descriptor", 0)
    moved = re.findall(r"pbx-1 answered 503 for (\S+): trying the next node",
                       (folder / "sbc.log").read_text())
    assert refused == len(moved) >= 1
    calls = {c.call_id: c for c in read_calls_csv(run / "calls.csv")}
    assert all(c.answered for c in calls.values())
    assert all(calls[m].node == "pbx-2" for m in moved)
    f = summary["faults"][0]
    assert all(f["started_at"] < calls[m].started_at < f["ended_at"] for m in moved)


def test_stress_faults_of_a_sigkilled_drill_are_undone_by_recover(isolated, tmp_path):
    inv = sandbox.up(sandbox.SandboxConfig(pbx_nodes=1))  # `drill lab up`'s: left running
    pid = read_pid(inv.find("pbx-1").process.pidfile)
    cgroup, limits = Path(f"/proc/{pid}/cgroup").read_text(), Path(f"/proc/{pid}/limits")
    nofile = [x for x in limits.read_text().splitlines() if x.startswith("Max open files")]
    s = scenario("sandbox-pbx-cpu-starved")
    s.pop("sandbox")
    s["duration"] = "60s"
    s["faults"] = [{**s["faults"][0], "at": "1s", "duration": "50s"},
                   {"id": "fds", "type": "stress.fd", "target": "pbx-1", "at": "1s"},
                   {"id": "disk", "type": "stress.disk", "target": "pbx-1", "at": "1s",
                    "path": str(tmp_path), "size": "1m"}]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(s))
    sigkill_after_injections(tmp_path / "s.yaml", tmp_path / "out", 3)
    journal = Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl")
    cpu = next(f for f in journal.open_faults() if f["fault_id"] == "pbx-starved")["recipe"]
    assert proc_state(cpu["stressor"]) is not None and Path(cpu["group"]["cpu"]).is_dir()
    assert Path(f"/proc/{pid}/cgroup").read_text() != cgroup
    assert (tmp_path / "hotline-drill-disk.fill").exists()
    res = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert proc_state(cpu["stressor"]) is None  # the hogs are gone
    assert not Path(cpu["group"]["cpu"]).exists()
    assert Path(f"/proc/{pid}/cgroup").read_text() == cgroup  # pbx-1 where it was
    assert [x for x in limits.read_text().splitlines()
            if x.startswith("Max open files")] == nofile
    assert not (tmp_path / "hotline-drill-disk.fill").exists()
    assert journal.open_faults() == []
