"""What digest authentication and TLS cost our generator: CPU per call against plain UDP.

In one run, the same sandbox SBC takes calls from our generator (one process, no media:
signalling only) at one offered rate, over each way in: plain UDP, UDP with digest (every
INVITE challenged once, 407 and again), TLS on one trunk connection, TLS with digest, and
TLS with a connection (and a handshake) per call. Each step reads the generator's own CPU
time (getrusage, user + system) from the load's start to its end: calls per core = 1 / CPU seconds per call,
and the ratio to plain UDP is the figure (goal: digest and TLS each at least 60 %). A step
whose calls did not all complete is marked: its CPU figure would not be a call's.

Usage: python bench/entry_cost.py [--cps 40] [--seconds 15] [--hold 1] [--json out.json]
Every load is bounded: the generator places --cps x --seconds calls and stops.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def step(entry: dict, cps: float, seconds: float, hold: float) -> dict:
    calls = int(cps * seconds)
    out = subprocess.run([sys.executable, "-m", "harness.load.standalone", "--entry-json",
                          json.dumps(entry), "--cps", str(cps), "--hold", str(hold),
                          "--seconds", str(seconds + 5), "--calls", str(calls)],
                         capture_output=True, text=True, timeout=seconds + hold + 120)
    lines = out.stdout.strip().splitlines()
    if not lines:
        return {"error": out.stderr[-600:]}
    fig = json.loads(lines[-1])
    return {"calls": fig["attempts"], "completed": fig["completed"],
            "cpu": fig["load_cpu_seconds"],  # from the load's start: not the imports'
            "cpu_ms_per_call": 1000 * fig["load_cpu_seconds"] / max(fig["attempts"], 1),
            "ok": fig["completed"] >= 0.99 * calls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cps", type=float, default=40.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    # a sandbox of the bench's own: its own address block and state folder
    os.environ.setdefault("HOTLINE_DRILL_SANDBOX_BLOCK", "127.88.1")
    os.environ["HOTLINE_DRILL_STATE"] = tempfile.mkdtemp(prefix="entry-cost-")
    from harness.lab import sandbox
    print(f"our generator at {a.cps:g} calls/s for {a.seconds:g} s (hold {a.hold:g} s, no media) "
          "into the sandbox SBC, one way in at a time")
    results = {}
    for auth in (False, True):
        inv = sandbox.up(sandbox.SandboxConfig(tls=True, auth=auth))
        try:
            tls = next(e for e in inv.entry_points if e.name == "carrier-tls")
            base = {k: v for k, v in tls.model_dump(mode="json", exclude_none=True).items()
                    if k in ("auth", "caller_ip")}
            variants = {
                "udp": {**base, "name": "udp", "address": inv.find("sbc").sip},
                "tls": tls.model_dump(mode="json", exclude_none=True),
            }
            if not auth:
                one_each = tls.model_dump(mode="json", exclude_none=True)
                one_each["tls"]["reuse"] = False
                variants["tls, a connection per call"] = one_each
            for name, entry in variants.items():
                label = f"{name} + digest" if auth else name
                results[label] = r = step(entry, a.cps, a.seconds, a.hold)
                if "error" in r:
                    print(f"  {label}: failed: {r['error']}")
                    continue
                print(f"  {label:28s} {r['completed']}/{r['calls']} completed, "
                      f"{r['cpu_ms_per_call']:.2f} ms CPU per call "
                      f"({1000 / r['cpu_ms_per_call']:.0f} calls per core-second)"
                      + ("" if r["ok"] else "  (NOT ALL COMPLETED: not a call's cost)"),
                      flush=True)
        finally:
            sandbox.down()
    plain = results.get("udp", {}).get("cpu_ms_per_call")
    if plain:
        for label, r in results.items():
            if label != "udp" and "cpu_ms_per_call" in r:
                print(f"{label}: {100 * plain / r['cpu_ms_per_call']:.0f} % of plain UDP's "
                      "calls per core")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
