"""Whole drills at rising call rates, per load engine: one Locust process, Locust with two
local workers (`--workers 2`), and SIPp (`engine: sipp`), against one SIPp UAS.

Each step is a real `drill run` of a steady-state scenario (no fault) whose target
is a one-entry inventory pointing at the UAS, so the figure covers the whole
pipeline a user gets: placing calls, records, events.jsonl and the reports. A step
passes when < 1 % of the calls failed and the attempts recorded reach 95 % of
the offered rate while they were placed (first to last INVITE). The reference is measured in the same run: SIPp's engine
against the same UAS; the Locust figures are printed as ratios of it.

Usage: python bench/engines.py [--seconds 8] [--rates 100,250,500,...]
Every load is bounded: the drill's duration, SIPp's -m and -timeout.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sip_load import free_port, stop  # noqa: E402  (the same UAS handling as the other bench)

ENGINES = {
    "locust": ("locust", []),
    "locust x2 workers": ("locust", ["--workers", "2"]),
    "sipp": ("sipp", []),
}


def start_uas() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-aa",
                             "-nostdin", "-timeout", "600s", "-max_socket", "60000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # bench only: let SIPp bind before the steady-state OPTIONS
    return proc, port


def step(engine: str, extra: list[str], rate: float, seconds: float, folder: Path) -> dict:
    uas, port = start_uas()
    inv = folder / f"target-{port}.yaml"
    inv.write_text(f"name: bench-uas\nentry_points:\n  - {{name: uas, address: '127.0.0.1:{port}'}}\n"
                   "allowlist: []\n")
    sc = folder / f"bench-{engine}-{rate:g}.yaml"
    sc.write_text(f"name: bench-{engine}-{rate:g}\ntarget: {inv}\nduration: {seconds}s\n"
                  f"load: {{engine: {engine}, calls_per_second: {rate}, hold: 1s, rtp_share: 0%,"
                  f" invite_timeout: 4s, bye_timeout: 2s}}\n"
                  "sla: {answer_rate: 99%, steady_state_after: null}\n")
    out = folder / "runs"
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(sc), "-o", str(out), *extra],
                         capture_output=True, text=True, timeout=seconds * 10 + 120)
    stop(uas)
    runs = sorted(out.glob(f"*-bench-{engine}-{rate:g}"), key=lambda p: p.stat().st_mtime)
    if not runs or not (runs[-1] / "summary.json").exists():
        return {"offered": rate, "calls": 0, "failed": 0, "share": 0.0, "pass": False,
                "error": (res.stdout + res.stderr)[-300:]}
    s = json.loads((runs[-1] / "summary.json").read_text())
    calls, failed = s["counts"]["attempts"], s["counts"]["attempts"] - s["counts"]["completed"]
    starts = sorted(float(r["started_at"]) for r in csv.DictReader((runs[-1] / "calls.csv").open()))
    achieved = (len(starts) - 1) / max(starts[-1] - starts[0], 1e-9) if len(starts) > 1 else 0.0
    return {"offered": rate, "calls": calls, "failed": failed, "share": achieved / rate,
            "wall": time.time() - t0,
            "pass": calls > 0 and failed / calls < 0.01 and achieved >= 0.95 * rate}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rates", default="100,250,500,750,1000,1500,2000,3000")
    a = ap.parse_args(argv)
    rates = [float(r) for r in a.rates.split(",")]
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (engine, extra) in ENGINES.items():
            best[name] = 0.0
            for rate in rates:
                st = step(engine, extra, rate, a.seconds, Path(tmp))
                print(f"  {name:18s} {rate:6.0f} calls/s: {st['calls']:6d} recorded "
                      f"(achieved {st['share']:.0%} of the offered rate), {st['failed']:5d} failed -> "
                      f"{'pass' if st['pass'] else 'FAIL'}" + (f"  {st['error']}" if "error" in st else ""),
                      flush=True)
                if not st["pass"]:
                    break
                best[name] = rate
    ref = best["sipp"] or 1
    print(json.dumps({"highest_passing_step": best,
                      "ratio_to_sipp_engine": {k: v / ref for k, v in best.items()}}))


if __name__ == "__main__":
    main()
