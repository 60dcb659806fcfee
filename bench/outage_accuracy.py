"""Metric accuracy: the outage the harness reports against blackouts of known length.

Runs the real `drill run` N times on the sandbox (one PBX node, no health
check, so the blackout is the only cause); each drill holds one blackout of
each length, cut with iptables (`net.cut`) or a relay blackhole
(`udp.blackhole`). Prints, per length, the median and largest error of the
measured outage against the length asked for and against the fault's own
journaled window. Needs root (iptables); every load is bounded.

    python bench/outage_accuracy.py --runs 20 --cps 20 --kind net.cut
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_ground_truth import BLACKOUTS, blackout_scenario  # noqa: E402


def one_run(kind: str, cps: int, work: Path, i: int) -> list[dict]:
    block = f"127.{90 + i % 50}.{os.getpid() % 250}"
    env = {**os.environ, "HOTLINE_DRILL_SANDBOX_BLOCK": block,
           "HOTLINE_DRILL_STATE": str(work / f"state-{i}")}
    sc = blackout_scenario(kind, cps, f"{block}.11")
    path = work / f"run-{i}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    out = work / f"out-{i}"
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o", str(out)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    if res.returncode not in (0, 1, 4):
        raise SystemExit(f"run {i} exited {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    run_dir = next(d for d in out.iterdir() if d.is_dir())
    summary = json.loads((run_dir / "summary.json").read_text())
    return [{"length": int(f["fault_id"].split("-")[1][:-1]), "outage": f["outage"]["length"],
             "window": f["ended_at"] - f["started_at"], "inconclusive": res.returncode == 4}
            for f in summary["faults"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cps", type=int, default=20)
    ap.add_argument("--kind", choices=("net.cut", "udp.blackhole"), default="net.cut")
    a = ap.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            rows += one_run(a.kind, a.cps, Path(tmp), i)
            print(f"run {i + 1}/{a.runs} done", file=sys.stderr, flush=True)
    print(f"{a.kind}, {a.cps} calls/s, {a.runs} runs (tolerance max(0.1 s, 2/CPS) = "
          f"{max(0.1, 2 / a.cps):.3f} s)")
    bad = sum(r["inconclusive"] for r in rows) // len(BLACKOUTS)
    print(f"{bad} of {a.runs} runs inconclusive (the generator stalled or fell behind): left out")
    print("| blackout | median error vs length | max error vs length | max error vs window |")
    print("| --- | --- | --- | --- |")
    for length in BLACKOUTS:
        got = [r for r in rows if r["length"] == length and not r["inconclusive"]]
        if not got:
            continue
        err = [r["outage"] - length for r in got]
        werr = [abs(r["outage"] - r["window"]) for r in got]
        print(f"| {length} s | {statistics.median(err):+.3f} s | {max(err, key=abs):+.3f} s "
              f"| {max(werr):.3f} s |")


if __name__ == "__main__":
    main()
