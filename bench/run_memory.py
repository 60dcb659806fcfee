"""Memory a drill needs per recorded call: `drill run` against the sandbox, short and long.

The same scenario (signalling only, a short hold, no fault) runs for two lengths; the
drill's peak resident memory (VmHWM of the `drill run` process, read from /proc until it
exits) is taken for each, and the growth per call is the difference of the peaks over the
difference of the calls recorded. The short run is the reference in the same run, so
what every drill needs (Python, Locust, the sandbox's clients) cancels out.

    python bench/run_memory.py --rate 200 --seconds 15,60
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = """\
name: memory-{seconds}
duration: {seconds}s
load:
  calls_per_second: {rate}
  hold: 500ms
  rtp_share: 0%
sla:
  answer_rate: 0%
"""


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(folder: Path, seconds: int, rate: int) -> tuple[int, int, float]:
    """(calls recorded, peak KiB of `drill run`, wall seconds)."""
    folder.mkdir(parents=True)
    path = folder / "s.yaml"
    path.write_text(SCENARIO.format(seconds=seconds, rate=rate))
    env = {**os.environ, "HOTLINE_DRILL_STATE": str(folder / "state"),
           "HOTLINE_DRILL_SANDBOX_BLOCK": "127.199.1"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(path), "-o",
                             str(folder / "out")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    peak = 0
    deadline = time.time() + seconds + 120
    while proc.poll() is None and time.time() < deadline:
        peak = max(peak, peak_kib(proc.pid))
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    took = time.perf_counter() - t
    runs = sorted(p for p in (folder / "out").iterdir() if p.is_dir())
    summary = json.loads((runs[-1] / "summary.json").read_text())
    return summary["counts"]["attempts"], peak, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=200, help="calls per second")
    ap.add_argument("--seconds", default="15,60", help="two lengths, short then long")
    a = ap.parse_args()
    short, long_ = (int(x) for x in a.seconds.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(Path(tmp) / str(s), s, a.rate) for s in (short, long_)]
    for s, (calls, kib, took) in zip((short, long_), rows):
        print(f"{s:>4} s at {a.rate} calls/s: {calls:>7} calls, peak {kib / 1024:6.0f} MiB, "
              f"{took:5.0f} s")
    (c1, k1, _), (c2, k2, _) = rows
    per_call = (k2 - k1) * 1024 / max(1, c2 - c1)
    print(f"growth: {per_call:.0f} bytes per recorded call "
          f"({(k2 - k1) / 1024:.0f} MiB for {c2 - c1} more calls)")


if __name__ == "__main__":
    main()
