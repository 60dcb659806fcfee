"""Registrations per second against the lab's Kamailio, ours against SIPp's in the same run,
and how many phones one process keeps registered.

Needs the container lab up (`drill lab up --docker`): its Kamailio (registrar + usrloc in
memory, 4 UDP workers) is the registrar. In one run:

1. **Storm rate**: N phones of ours (`harness/load/agents.py`, one process, each on its own
   flow) REGISTER all at once; the rate is N over the time from the first REGISTER sent to
   the last 200. Kamailio's own count (`usrloc:location_users`) must then be N. Then SIPp
   (`bench/sipp/uac-register.xml`, one process, one socket) sends N REGISTERs for N records
   as fast as it can (`-r` far above what it reaches); its rate is N over its wall time,
   and its own count of successful "calls" must be N (Kamailio restarted before each run,
   so each table starts empty).
2. **Kept registered**: M phones with a 10 s expiry refreshed at half of it (M/5 REGISTERs a
   second), for 30 s: the fewest registered in any second, IRA and RRD p95.

    python bench/registrations.py --storm 200,500,1000 --keep 500,1000,2000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.lab import containers  # noqa: E402
from harness.load.agents import Phones  # noqa: E402
from harness.metrics.registration import ira, registered_each_second, rrd  # noqa: E402
from harness.scenario.load import read_inventory  # noqa: E402
from harness.sip.message import local_ip_for  # noqa: E402
from harness.sip.register import PhoneSpec  # noqa: E402

SIPP_XML = ROOT / "bench" / "sipp" / "uac-register.xml"


def registered_users() -> int:
    """Kamailio's own count of records in its table (`ul.dump` is too big past a few hundred)."""
    out = subprocess.run(["docker", "exec", "hd-lab-sbc", "kamcmd", "stats.get_statistics",
                          "usrloc:"], capture_output=True, text=True, timeout=15)
    line = next(x for x in out.stdout.splitlines() if x.startswith("usrloc:location_users"))
    return int(line.split("=")[1])


def empty_table() -> None:
    """Kamailio restarted: its in-memory table is empty, each run counts anew."""
    subprocess.run(["docker", "restart", "-t", "0", "hd-lab-sbc"], check=True, timeout=60,
                   capture_output=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if registered_users() == 0:
                return
        except (StopIteration, IndexError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit("Kamailio did not come back after its restart")


def ours_storm(n: int, registrar, domain: str) -> dict:
    spec = PhoneSpec(registrar, domain, expires=300, timeout=8.0, local_ip=local_ip_for(registrar[0]))
    phones = Phones([f"bench{i:04d}" for i in range(1, n + 1)], spec)
    phones.start(spread=0.0)
    deadline = time.time() + 60
    while time.time() < deadline and sum(bool(p.attempts) for p in phones.phones) < n:
        time.sleep(0.05)
    phones.stop(unregister=False)
    attempts = phones.attempts
    ok = [a for a in attempts if a.status == 200]
    took = max(a.ended_at for a in ok) - min(a.sent_at for a in attempts)
    held = registered_users()
    return {"n": n, "ok": len(ok), "held": held, "rate": len(ok) / took, "rrd_p95": rrd(ok)["p95"]}


def sipp_storm(n: int, registrar, domain: str, work: Path) -> dict:
    started = time.time()
    res = subprocess.run(["sipp", f"{registrar[0]}:{registrar[1]}", "-sf", str(SIPP_XML),
                          "-s", domain, "-m", str(n), "-r", "20000", "-l", "1000",
                          "-i", local_ip_for(registrar[0]), "-nostdin", "-trace_stat",
                          "-fd", "1", "-stf", str(work / f"sipp-{n}.csv")],
                         capture_output=True, text=True, timeout=120, cwd=work)
    took = time.time() - started
    held = registered_users()
    ok = successful(work / f"sipp-{n}.csv")
    return {"n": n, "ok": ok, "held": held, "rate": ok / took, "exit": res.returncode}


def successful(stats: Path) -> int:
    """SIPp's own cumulative count of successful calls (its last statistics line)."""
    lines = stats.read_text().splitlines()
    head = lines[0].split(";")
    last = lines[-1].split(";")
    return int(last[head.index("SuccessfulCall(C)")])


def keep(m: int, registrar, domain: str, seconds: float = 30.0) -> dict:
    spec = PhoneSpec(registrar, domain, expires=10, refresh=0.5, retry=1.0, timeout=2.0,
                     local_ip=local_ip_for(registrar[0]))
    phones = Phones([f"keep{i:04d}" for i in range(1, m + 1)], spec)
    start = time.time()
    phones.start(spread=5.0)
    time.sleep(seconds)
    phones.stop(unregister=True)
    a = phones.attempts
    each = registered_each_second(a, start + 6.0, start + seconds)  # after the boot spread
    return {"m": m, "registers": len(a), "registered_min": min(each), "ira": ira(a),
            "rrd_p95": rrd(a)["p95"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storm", default="200,500,1000")
    ap.add_argument("--keep", default="500,1000,2000")
    a = ap.parse_args()
    inv = read_inventory(containers.inventory_path())
    registrar, domain = inv.registrar.addr, inv.registrar.domain
    work = Path(tempfile.mkdtemp(prefix="bench-reg-"))
    print("| phones | ours: REGISTERs/s | ours: 200s / in ul.dump | SIPp: REGISTERs/s | "
          "SIPp: successful / in ul.dump | ours / SIPp |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in [int(x) for x in a.storm.split(",") if x]:
        empty_table()
        o = ours_storm(n, registrar, domain)
        empty_table()
        s = sipp_storm(n, registrar, domain, work)
        print(f"| {n} | {o['rate']:.0f} | {o['ok']} / {o['held']} | {s['rate']:.0f} | "
              f"{s['ok']} / {s['held']} | {o['rate'] / s['rate']:.2f} |", flush=True)
    print()
    print("| phones kept | REGISTERs | fewest registered in a second | IRA | RRD p95 |")
    print("| --- | --- | --- | --- | --- |")
    for m in [int(x) for x in a.keep.split(",") if x]:
        empty_table()
        k = keep(m, registrar, domain)
        print(f"| {k['m']} | {k['registers']} | {k['registered_min']} | {k['ira']:.3f} | "
              f"{k['rrd_p95'] * 1000:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
