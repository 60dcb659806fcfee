"""DR figure accuracy on the two-site lab: RPO against known cuts, calls back against VRRP.

RPO is measured against replication cuts of known length, and calls back against
keepalived's own takeover.

CI checks each figure once (`tests/e2e/test_dr_lab.py`); this runs the same drills many
times to show the spread. Per run the lab is brought to its starting state (`drill lab up
--docker --sites 2` makes a swapped database pair anew) and the real `drill run` is used.

- `--rpo`: lab-dr-cut-then-site-loss with the replication cut N s before site A is killed,
  for each N in `--cuts`. Known cause: the writes acknowledged between the cut and the kill.
  Printed: the reported RPO less the time from the cut to the kill's send, and the number of
  lost writes that differ from the ones acknowledged during the cut.
- `--vip`: lab-dr-sbc-failover. Known cause: keepalived's notify log dates the takeover.
  Printed: the takeover after the kill, and calls back less the takeover.

Needs root, Docker and the lab images (`.ci/run` sets them up); every load is bounded.

    python bench/dr_accuracy.py --rpo --runs 4 --cuts 2,4,8
    python bench/dr_accuracy.py --vip --runs 8
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

KILL_AT = 12.0  # the site dies here; the cut comes N s before it


def drill(scenario: dict, work: Path, name: str) -> tuple[dict, list[dict], int]:
    """One real `drill run` of `scenario` on a lab in its starting state: its summary,
    events and exit code."""
    from harness.lab import dr_lab
    from harness.metrics.records import read_events
    dr_lab.up()
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    out = work / name
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    if res.returncode not in (0, 1, 4):
        raise SystemExit(f"{name} exited {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    run = next(d for d in sorted(out.iterdir()) if d.is_dir())
    return json.loads((run / "summary.json").read_text()), read_events(run / "events.jsonl"), res.returncode


def rpo_run(cut: float, work: Path, i: int) -> dict:
    from tests.e2e.test_dr_lab import acks_of, kill_landed, windows
    sc = yaml.safe_load((ROOT / "scenarios" / "lab-dr-cut-then-site-loss.yaml").read_text())
    sc["name"] = f"bench-rpo-{cut:g}s-{i}"
    sc["duration"] = f"{KILL_AT + 14:g}s"
    faults = {f["id"]: f for f in sc["faults"]}
    faults["cut-replication"]["at"] = f"{KILL_AT - cut:g}s"
    faults["lose-site-a"]["at"] = f"{KILL_AT:g}s"
    summary, events, code = drill(sc, work, sc["name"])
    (dr,) = summary["dr"]
    w = windows(summary)
    cut_at = w["cut-replication"]["started_at"]
    died, gone = kill_landed(w["lose-site-a"], events)
    during = {seq for seq, at in acks_of(events).items() if cut_at < at < gone}
    return {"cut": cut, "inconclusive": code == 4, "rpo": dr["rpo"]["seconds"],
            "truth": died - cut_at, "spread": gone - died,
            "during": len(during), "lost": dr["rpo"]["lost"],
            "differ": len(set(dr["rpo"]["lost_seqs"]) ^ during)}


def vip_run(work: Path, i: int) -> dict:
    from tests.e2e.test_dr_lab import takeover_after, windows
    sc = yaml.safe_load((ROOT / "scenarios" / "lab-dr-sbc-failover.yaml").read_text())
    sc["name"] = f"bench-vip-{i}"
    summary, _events, code = drill(sc, work, sc["name"])
    fault = windows(summary)["kill-sbc-a"]
    took = takeover_after(fault["started_at"])
    back = (fault.get("calls_back") or {}).get("seconds")
    kept, eligible = fault["continuity"]
    return {"inconclusive": code == 4, "moved": took - fault["started_at"] if took else None,
            "back": back, "kept": kept, "eligible": eligible}


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):+.3f} s / {max(xs, key=abs):+.3f} s" if xs else "—"


def report_rpo(rows: list[dict], cuts: list[float]) -> None:
    print("| cut before the kill | runs | reported RPO − (kill − cut): median / max | kill's spread (max) "
          "| lost writes ≠ acknowledged during the cut (max) | writes lost (median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cut in cuts:
        got = [r for r in rows if r["cut"] == cut and not r["inconclusive"]]
        if not got:
            continue
        print(f"| {cut:g} s | {len(got)} | {_fmt([r['rpo'] - r['truth'] for r in got])} "
              f"| {max(r['spread'] for r in got):.3f} s | {max(r['differ'] for r in got)} "
              f"| {statistics.median(r['lost'] for r in got):g} |")


def report_vip(rows: list[dict]) -> None:
    from tests.e2e.test_dr_lab import ADVERT, SKEW
    got = [r for r in rows if not r["inconclusive"] and r["moved"] is not None and r["back"] is not None]
    print(f"VRRP bounds for advert {ADVERT:g} s: takeover in [{2 * ADVERT + SKEW:.2f}, "
          f"{3 * ADVERT + SKEW:.2f}] s after the kill")
    print("| runs | takeover after the kill: median / min / max | calls back − takeover: median / max "
          "| calls in progress kept |")
    print("| --- | --- | --- | --- |")
    if got:
        moved = [r["moved"] for r in got]
        lag = [r["back"] - r["moved"] for r in got]
        print(f"| {len(got)} | {statistics.median(moved):.2f} / {min(moved):.2f} / {max(moved):.2f} s "
              f"| {statistics.median(lag):+.3f} / {max(lag):+.3f} s "
              f"| {sum(r['kept'] for r in got)} of {sum(r['eligible'] for r in got)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpo", action="store_true", help="RPO against cuts of known length")
    ap.add_argument("--vip", action="store_true", help="calls back against keepalived's takeover")
    ap.add_argument("--runs", type=int, default=4, help="runs per cut length (--rpo) or in all (--vip)")
    ap.add_argument("--cuts", default="2,4,8", help="seconds from the cut to the kill (--rpo)")
    ap.add_argument("--keep", type=Path, help="keep every run's folder here (else a temporary folder)")
    a = ap.parse_args()
    if not (a.rpo or a.vip):
        ap.error("say --rpo, --vip or both")
    cuts = [float(x) for x in a.cuts.split(",")]
    if any(not 0.5 <= c <= KILL_AT - 2 for c in cuts):
        ap.error(f"--cuts: each between 0.5 and {KILL_AT - 2:g} s (the writer needs 2 s before the cut)")
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ["HOTLINE_DRILL_RERUN_INCONCLUSIVE"] = "0"
        from harness.lab import dr_lab
        try:
            if a.rpo:
                rows = []
                for i in range(a.runs):
                    for cut in cuts:
                        rows.append(rpo_run(cut, work, i))
                        print(f"rpo run {i + 1}/{a.runs}, cut {cut:g} s: {rows[-1]}", file=sys.stderr, flush=True)
                print(f"lab-dr-cut-then-site-loss, asynchronous replication, writes at 20 Hz, {a.runs} runs per cut; "
                      f"{sum(r['inconclusive'] for r in rows)} inconclusive (left out)")
                report_rpo(rows, cuts)
            if a.vip:
                rows = []
                for i in range(a.runs):
                    rows.append(vip_run(work, i))
                    print(f"vip run {i + 1}/{a.runs}: {rows[-1]}", file=sys.stderr, flush=True)
                print(f"lab-dr-sbc-failover, {a.runs} runs; {sum(r['inconclusive'] for r in rows)} "
                      "inconclusive (left out)")
                report_vip(rows)
        finally:
            dr_lab.down()


if __name__ == "__main__":
    main()
