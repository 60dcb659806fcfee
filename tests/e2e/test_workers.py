"""Load beyond one machine: Locust master/worker, as `drill run --workers` and `--master`/`--worker`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.calls_csv import read_calls_csv
from harness.metrics.records import read_events
from tests.conftest import free_tcp_port, last_run

HERE = Path(__file__).parent / "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]


def own_totals(log: Path) -> dict:
    """The totals a worker printed itself when the master quit it."""
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith('{"worker_totals"')]
    assert len(lines) == 1, log.read_text()[-2000:]
    return lines[0]["worker_totals"]


def test_two_local_workers_merge_into_one_report(isolated, tmp_path):
    res = subprocess.run(DRILL + ["run", str(HERE / "short-node-loss.yaml"), "--workers", "2",
                                  "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    run = last_run(tmp_path / "out")
    events = read_events(run / "events.jsonl")
    workers = [own_totals(run / f"worker-{i}.log") for i in (1, 2)]
    # each worker placed calls, and every call it placed reached the master
    assert all(w["placed"] > 10 and w["sent"] == w["placed"] for w in workers), workers
    calls = read_calls_csv(run / "calls.csv")
    summary = json.loads((run / "summary.json").read_text())
    assert len(calls) == summary["counts"]["attempts"] == sum(w["placed"] for w in workers)
    assert summary["counts"]["answered"] == sum(w["answered"] for w in workers)
    # the master heard the same totals from the workers over Locust's link
    reported = {e["worker"]: e for e in events if e["event"] == "worker_totals"}
    assert {w["worker"] for w in workers} == set(reported)
    assert all(reported[w["worker"]]["placed"] == w["placed"] for w in workers)
    # the merged run is one drill: the offered rate is the scenario's (5 calls/s for 20 s), and
    # the fault is judged on the merged records
    assert 85 <= len(calls) <= 115, len(calls)
    assert summary["faults"][0]["failover_time"] is not None
    assert {c.node for c in calls if c.answered} == {"pbx-1", "pbx-2"}


def _master_and_worker(tmp_path, attempt: int):
    """One remote-worker drill: the master, and a worker joining it as from another machine."""
    port = free_tcp_port()
    out = tmp_path / f"out-{attempt}"
    master = subprocess.Popen(DRILL + ["run", str(HERE / "short-node-loss.yaml"), "--master",
                                       "--master-bind", f"127.0.0.1:{port}", "--expect-workers", "1",
                                       "--rerun-inconclusive", "0", "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = subprocess.Popen(DRILL + ["run", str(HERE / "short-node-loss.yaml"),
                                       "--worker", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ})
    try:
        m_out, _ = master.communicate(timeout=180)
        w_out, _ = worker.communicate(timeout=30)
    finally:
        master.kill()
        worker.kill()
    return master.returncode, m_out, worker.returncode, w_out, out


# a master and a worker started as two commands must meet in time; beside three other
# workers' drills a full parallel run once saw the worker connect and place nothing: alone
@pytest.mark.serial
def test_master_and_a_worker_joining_from_elsewhere(isolated, tmp_path):
    # Remote workers join one run only, so the drill cannot run itself again when its own load
    # generator stalled (exit 4, inconclusive: CPU steal on a shared runner). The test does what a
    # CI job with remote workers does instead: it runs the pair again, as often as the isolated
    # environment's HOTLINE_DRILL_RERUN_INCONCLUSIVE allows; any other exit is judged at once.
    for attempt in range(1 + int(isolated["HOTLINE_DRILL_RERUN_INCONCLUSIVE"])):
        m_rc, m_out, w_rc, w_out, out = _master_and_worker(tmp_path, attempt)
        if m_rc != 4:
            break
    assert m_rc in (0, 1), m_out
    assert w_rc == 0, w_out
    totals = json.loads(next(x for x in w_out.splitlines() if x.startswith('{"worker_totals"')))
    run = last_run(out)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["attempts"] == totals["worker_totals"]["placed"] > 50


def test_master_refuses_reruns_its_remote_workers_would_miss(isolated, tmp_path):
    res = subprocess.run(DRILL + ["run", str(HERE / "short-node-loss.yaml"), "--master",
                                  "--rerun-inconclusive", "1", "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "remote workers join one run only" in res.stderr
    assert not (tmp_path / "out").exists()  # refused before a run folder was made
