"""How `drill report` scales with a run's length: time and peak memory for N recorded calls.

A run folder is written with N call events (the shape a real drill's events.jsonl has: a
steady load through two carriers and two nodes, one node killed for a tenth of the run),
then `drill report` rebuilds every output from it in a subprocess; its wall time and peak
resident memory (getrusage of the child) are printed per size, with the per-call figures.
The reference in the same run is the smallest size: the ratios show how it grows.

    python bench/report_scale.py --calls 10000,100000,1000000
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = """\
name: scale
duration: {duration}s
load:
  calls_per_second: {rate}
  hold: 8s
  rtp_share: 0%
faults:
  - id: kill-pbx-1
    type: process.kill
    target: pbx-1
    at: {at}s
    duration: {length}s
"""


def write_run(folder: Path, calls: int, rate: float = 100.0) -> None:
    rng = random.Random(7)
    duration = calls / rate
    t0 = 1_790_000_000.0
    at, length = duration * 0.45, duration * 0.1
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(SCENARIO.format(duration=duration, rate=rate, at=at,
                                                          length=length))
    with open(folder / "events.jsonl", "w") as fh:
        def ev(d):
            fh.write(json.dumps(d) + "\n")
        ev({"event": "run_started", "ts": t0, "run_id": "scale"})
        ev({"event": "fault_injected", "ts": t0 + at, "fault_id": "kill-pbx-1",
            "type": "process.kill", "target": "pbx-1", "nodes": ["pbx-1"], "verified": True,
            "inject_took": 0.01, "description": "SIGKILL pbx-1"})
        for i in range(calls):
            start = t0 + i / rate
            node = "pbx-1" if i % 2 else "pbx-2"
            down = t0 + at <= start < t0 + at + length and node == "pbx-1"
            answered = None if down else start + 0.02 + rng.random() * 0.01
            rec = {"call_id": f"c{i:08d}@127.0.0.1", "carrier": f"carrier-{'ab'[i % 2]}",
                   "node": "" if down else node, "started_at": start,
                   "ringing_at": answered, "answered_at": answered,
                   "bye_sent_at": None if down else answered + 8,
                   "ended_at": start + (1.0 if down else 8.05),
                   "outcome": "failed" if down else "completed",
                   "status": 0 if down else 200, "bye_status": 0 if down else 200,
                   "reason": "no final response to INVITE (timeout)" if down else "",
                   "hold_planned": 8.0, "media": False}
            ev({"event": "call", "ts": rec["ended_at"], "call": rec})
        ev({"event": "fault_rolled_back", "ts": t0 + at + length, "fault_id": "kill-pbx-1",
            "note": "restarted", "undo_started": t0 + at + length - 0.01, "took": 0.01})
        ev({"event": "steady_state_after", "ts": t0 + duration + 9, "ok": True, "problems": []})
        ev({"event": "run_finished", "ts": t0 + duration + 10})


def report(folder: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB of the `drill report` child, its exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(folder)],
                         capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:  # ru_maxrss of children is the largest so far: sizes run smallest first
        peak = before
    if res.returncode not in (0, 1):
        print(res.stdout[-2000:], res.stderr[-2000:], file=sys.stderr)
    return took, peak / 1024, res.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="10000,100000", help="sizes, comma-separated, ascending")
    a = ap.parse_args()
    sizes = sorted(int(x) for x in a.calls.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            folder = Path(tmp) / f"run-{n}"
            write_run(folder, n)
            took, mib, code = report(folder)
            rows.append((n, took, mib, code))
            print(f"{n:>9} calls: drill report {took:7.1f} s, peak {mib:7.0f} MiB "
                  f"({mib * 1024 * 1024 / n:7.0f} B/call), exit {code}", flush=True)
    base = rows[0]
    for n, took, mib, _ in rows[1:]:
        print(f"x{n / base[0]:g} calls: time x{took / base[1]:.1f}, memory x{mib / base[2]:.1f}")


if __name__ == "__main__":
    main()
