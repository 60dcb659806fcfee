"""Verdicts on the container lab's flaws, repeated: a flawed hotline must get the same verdict
every time, whichever calls happen to land near the fault's end.

CI runs each flaw's drill once (`tests/e2e/test_lab_flaws.py`); this runs the node-loss drill
(`tests/e2e/scenarios/lab-flaw-node-loss.yaml`: pbx-1 killed for 20 s at 10 calls/s) N times
behind the lab's Kamailio with the flaws given, and prints per run: the exit code, traffic
shift, the calls the harness found touched, the calls Kamailio's own log says it retried (or
let fail) on the dead node during the fault, and how long before the fault's end Kamailio's
last such call came. With `--flaw` none, the correct lab: the shift and its spread.

Needs root, Docker and the lab images (`.ci/run` sets them up); every load is bounded.

    python bench/lab_flaws.py --runs 5 --flaw health-check-flaps
    python bench/lab_flaws.py --runs 5 --flaw health-check-flaps --flaw no-failover
    python bench/lab_flaws.py --runs 5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(flaws: list[str], out: Path) -> dict:
    from tests.e2e.test_lab_flaws import NODE_LOSS, lab_up, run
    inv = lab_up(*flaws)
    code, summary, calls, logged = run(NODE_LOSS, out)
    (f,) = summary["faults"]
    start, end = f["started_at"], f["undo_started"]
    dead = inv.find("pbx-1").sip
    in_fault = {c.call_id for c in calls if start <= c.started_at < end}
    theirs = [at for at, _kind, pbx, cid in logged if pbx == dead and cid in in_fault]
    shift = f["shift"]
    return {"exit": code,
            "shift": "never" if shift["never"] else
                     "none" if shift["seconds"] is None else f"{shift['seconds']:.2f} s",
            "touched": shift["touched"], "strays": shift["strays"],
            "kamailio": len(theirs),
            "last_before_end": f"{end - max(theirs):.2f} s" if theirs else "-"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--flaw", action="append", default=[],
                    help="health-check-flaps, no-failover (repeatable; none: the correct lab)")
    ap.add_argument("--keep", type=Path, help="keep the run folders here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="hd-lab-flaws-"))
    print(f"flaws: {', '.join(args.flaw) or 'none'}; runs: {args.runs}; folders: {work}")
    print("run | exit | traffic shift | touched (strays) | Kamailio retried/failed on pbx-1 | "
          "its last before the fault's end")
    rows = []
    for i in range(args.runs):
        r = one(args.flaw, work / f"run-{i + 1}")
        rows.append(r)
        print(f"{i + 1} | {r['exit']} | {r['shift']} | {r['touched']} ({r['strays']}) | "
              f"{r['kamailio']} | {r['last_before_end']}", flush=True)
    verdicts = {(r["exit"], r["shift"] == "never") for r in rows}
    print(f"verdicts: {'the same in every run' if len(verdicts) == 1 else 'DIFFER'} "
          f"({', '.join(f'exit {e}' + (' never' if n else '') for e, n in sorted(verdicts))})")


if __name__ == "__main__":
    main()
