"""Highest sustained call rate: our load generator vs a SIPp UAC, against one SIPp UAS.

In one run, for each generator, the offered rate rises in steps; a step
passes when < 1 % of its calls fail and the achieved rate is >= 95 % of the
offered one. The highest passing step is the generator's figure; the ratio
ours / SIPp is printed (both run as one process, i.e. one core). Then the
memory per held call of our generator is measured from peak RSS at two
numbers of concurrently held calls.

Usage: python bench/sip_load.py [--seconds 8] [--hold 1] [--rates 25,50,...]
Every step is bounded: SIPp gets -m (a call count) and our generator --calls.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time

from harness.sip.message import free_port


def start_uas(calls: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
                             "-nostdin", "-timeout", "300s", "-max_socket", "60000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # bench only: let SIPp bind before the first INVITE
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def sipp_count(text: str, label: str) -> int:
    m = re.search(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(m.group(1)) if m else 0


def step_ours(rate: float, seconds: float, hold: float) -> dict:
    n = int(rate * seconds)
    uas, port = start_uas(n)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "harness.load.standalone", "--entry", f"127.0.0.1:{port}",
                          "--cps", str(rate), "--hold", str(hold), "--seconds", str(seconds * 3),
                          "--calls", str(n)], capture_output=True, text=True, timeout=seconds * 6 + 60)
    stop(uas)
    lines = out.stdout.strip().splitlines()
    if not lines:
        print(f"  ours failed at {rate:g} calls/s: {out.stderr[-400:]}")
        return {"offered": rate, "calls": 0, "failed": n, "achieved": 0.0}
    fig = json.loads(lines[-1])
    return {"offered": rate, "calls": fig["attempts"], "failed": fig["attempts"] - fig["completed"],
            "achieved": fig["achieved_cps"], "wall": time.time() - t0,
            "setup_p95": fig["setup_p95"],
            "rss_kib": fig["max_rss_kib"], "peak_in_flight": fig["peak_in_flight"]}


def step_sipp(rate: float, seconds: float, hold: float) -> dict:
    n = int(rate * seconds)
    uas, port = start_uas(n)
    t0 = time.time()
    out = subprocess.run(["sipp", "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(free_port()),
                          "-r", str(rate), "-m", str(n), "-d", str(int(hold * 1000)), "-nostdin",
                          "-timeout", f"{int(seconds * 4 + 30)}s", "-max_socket", "60000"],
                         capture_output=True, text=True, timeout=seconds * 6 + 60)
    elapsed = time.time() - t0
    stop(uas)
    screen = out.stdout + out.stderr
    ok, failed = sipp_count(screen, "Successful call"), sipp_count(screen, "Failed call")
    times = re.findall(r"(?:Start Time|Last Reset Time)\s*\|\s*\S+\s+\S+\s+(\d+\.\d+)", screen)
    sipp_elapsed = float(times[1]) - float(times[0]) if len(times) == 2 else elapsed
    placing = max(sipp_elapsed - hold, 1e-9)  # the last call was placed `hold` before the end
    return {"offered": rate, "calls": ok + failed, "failed": failed + max(0, n - ok - failed),
            "achieved": (n - 1) / placing, "wall": elapsed}


SETUP_P95_MAX = 0.2  # seconds, INVITE sent -> 200 received, for our generator


def passes(step: dict) -> bool:
    """< 1 % failed, >= 95 % of the offered rate, and (ours) calls set up promptly.

    SIPp 3.6's final counters print zero response times in this build, so the
    setup-time bar can only be checked on our side; on loopback SIPp's setup
    takes well under a millisecond at every rate it sustains.
    """
    prompt = step.get("setup_p95") is None or step["setup_p95"] <= SETUP_P95_MAX
    return step["calls"] > 0 and step["failed"] / max(step["calls"], 1) < 0.01 and \
        (step["achieved"] or 0) >= 0.95 * step["offered"] and prompt


def climb(name: str, fn, rates: list[float], seconds: float, hold: float) -> tuple[float, list[dict]]:
    best, steps = 0.0, []
    for rate in rates:
        step = fn(rate, seconds, hold)
        step["pass"] = passes(step)
        steps.append(step)
        print(f"  {name:5s} {rate:7.0f} calls/s offered: {step['calls']:6d} calls, "
              f"{step['failed']:5d} failed, achieved {step['achieved'] or 0:7.1f}/s"
              + (f", setup p95 {step['setup_p95'] * 1000:6.1f} ms" if step.get("setup_p95") else "") +
              " "
              f"-> {'pass' if step['pass'] else 'FAIL'}", flush=True)
        if not step["pass"]:
            break
        best = rate
    return best, steps


def memory_per_call(hold: float = 20.0) -> dict:
    """Peak RSS of our generator holding about 40 and about 400 calls; the slope is per call."""
    points = []
    for rate in (2, 20):
        n = int(rate * hold)
        uas, port = start_uas(n)
        out = subprocess.run([sys.executable, "-m", "harness.load.standalone", "--entry", f"127.0.0.1:{port}",
                              "--cps", str(rate), "--hold", str(hold), "--seconds", str(hold * 2),
                              "--calls", str(n)], capture_output=True, text=True, timeout=hold * 6 + 60)
        stop(uas)
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        points.append((fig["peak_in_flight"], fig["max_rss_kib"]))
    (c1, m1), (c2, m2) = points
    return {"points": points, "kib_per_call": (m2 - m1) / max(c2 - c1, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each step")
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--rates", default="25,50,100,150,200,300,400,600,800,1200")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--memory-only", action="store_true",
                    help="only the memory per held call (20 s hold, about 40 and 400 calls held)")
    a = ap.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester")
    if a.memory_only:
        mem = memory_per_call()
        print(f"memory per held call (ours): {mem['kib_per_call']:.1f} KiB "
              f"(peak RSS at {mem['points'][0][0]} and {mem['points'][1][0]} calls held)")
        return
    rates = [float(r) for r in a.rates.split(",")]
    print(f"steps of {a.seconds:g}s, hold {a.hold:g}s, signalling only, against a SIPp UAS on 127.0.0.1")
    ours, ours_steps = climb("ours", step_ours, rates, a.seconds, a.hold)
    sipp, sipp_steps = climb("sipp", step_sipp, rates, a.seconds, a.hold)
    mem = memory_per_call()
    ratio = ours / sipp if sipp else 0.0
    print(f"\nhighest sustained rate with < 1 % failures: ours {ours:g} calls/s, SIPp {sipp:g} calls/s")
    print(f"ratio ours / SIPp (one process each): {ratio:.1%} (target >= 25 %)")
    print(f"memory per held call (ours): {mem['kib_per_call']:.1f} KiB "
          f"(peak RSS at {mem['points'][0][0]} and {mem['points'][1][0]} calls held)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"ours": ours, "sipp": sipp, "ratio": ratio, "memory": mem,
                       "steps": {"ours": ours_steps, "sipp": sipp_steps}}, fh, indent=2)


if __name__ == "__main__":
    main()
