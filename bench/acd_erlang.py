"""Queue figures against queueing theory: the sandbox contact centre against Erlang C and A.

One `drill run` on the sandbox with one contact-centre node (N agents in one group), Poisson
arrivals, an exponential talk time and, optionally, an exponential patience. From the ACD's
own log: the share of callers who waited, the mean wait of all callers (ASA over everyone,
as Erlang C defines it), the share who abandoned; against Erlang C (no patience) or Erlang
A, computed with the arrival rate and the mean handle time the run itself had (the agents
are busy from their marker to the caller's BYE, a little longer than the talk drawn). Each
measured figure gets a 95 % interval by batch means (10 batches in arrival order), since
consecutive callers' waits are not independent.

    python bench/acd_erlang.py --agents 3 --cps 2 --talk 1.2 --seconds 300 [--patience 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.lab.acd import queue_sample  # noqa: E402
from harness.metrics.erlang import batch_interval, erlang_a_queue, erlang_c_queue  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--cps", type=float, default=2.0)
    ap.add_argument("--talk", type=float, default=1.2, help="mean talk time, s (exponential)")
    ap.add_argument("--patience", type=float, help="mean patience, s (exponential); none: endless")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="acd-erlang-"))
    env = {**os.environ, "HOTLINE_DRILL_SANDBOX_BLOCK": "127.89.1",
           "HOTLINE_DRILL_STATE": str(work / "state")}
    journey = {"keys": "1", "talk": {"exponential": f"{a.talk}s"}, "longest": "600s"}
    if a.patience:
        journey["patience"] = {"exponential": f"{a.patience}s"}
    scenario = {"name": "acd-erlang", "target": "sandbox", "seed": a.seed,
                "duration": f"{a.seconds + 30}s",
                "sandbox": {"pbx_nodes": 1, "contact_centre": {"groups": {"sales": a.agents},
                                                               "menu": {"1": "sales"}}},
                "load": {"calls_per_second": a.cps, "arrivals": "poisson",
                         "duration": f"{a.seconds}s", "journey": journey},
                "metrics": {"short_abandon": "0s"}, "sla": {"agent_answer_rate": None}}
    path = work / "acd-erlang.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o",
                          str(work / "out")], capture_output=True, text=True, env=env,
                         timeout=a.seconds + 600, cwd=ROOT)
    if res.returncode not in (0, 1):
        sys.exit(f"the drill did not finish (exit {res.returncode}):\n{res.stdout[-2000:]}")
    q = queue_sample((work / "state" / "sandbox-127.89.1" / "pbx-1.acd.jsonl")
                     .read_text().splitlines())
    rate, handle, waited, waits, gave_up = q.rate, q.handle, q.waited, q.waits, q.gave_up
    model = (erlang_a_queue(a.agents, rate, handle, a.patience) if a.patience
             else erlang_c_queue(a.agents, rate, handle))
    print(f"{len(waits)} callers through {a.agents} agents: arrivals {rate:.3f}/s, mean "
          f"handle {handle:.3f} s (talk drawn {a.talk:g} s), load {rate * handle:.2f} erlangs; "
          f"against Erlang {'A, patience ' + str(a.patience) + ' s' if a.patience else 'C'}")
    for name, values, want in (("waited", waited, model.p_wait), ("mean wait (s)", waits,
                                                                 model.mean_wait),
                               ("abandoned", gave_up, model.p_abandon)):
        mean, half = batch_interval(values)
        inside = abs(mean - want) <= half
        print(f"  {name:14s} measured {mean:.4f} ± {half:.4f} (95 %), model {want:.4f} -> "
              f"{'inside' if inside else 'OUTSIDE'} the interval")


if __name__ == "__main__":
    main()
