"""Run the SIP load generator alone against one address, without a drill.

For interoperability checks and the benchmark:
`python -m harness.load.standalone --entry 127.0.0.1:5080 --cps 20 --hold 1 --seconds 10`
prints one JSON object with the counts, the achieved rate and peak memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

from harness.load.sip_load import LoadController  # imports Locust (gevent) first
from harness.metrics.calls import counts, percentile
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec


def run(entry: str | EntryPoint, cps: float, hold: float, seconds: float, rtp_share: float,
        invite_timeout: float = 8.0, max_calls: int | None = None, srtp: str = "off") -> dict:
    """`entry`: ip:port (UDP, plain), or a whole inventory entry point (TLS, digest, SRTP)."""
    records = []
    spec = LoadSpec(calls_per_second=cps, hold=hold, rtp_share=rtp_share,
                    invite_timeout=invite_timeout, bye_timeout=3.0)
    if isinstance(entry, str):
        entry = EntryPoint(name="entry", address=entry, srtp=srtp)
    load = LoadController(spec, [entry], records.append,
                          node_of=lambda c: c, seed=1, max_calls=max_calls)
    before = resource.getrusage(resource.RUSAGE_SELF)  # the imports' and set-up's CPU: not the calls'
    t0 = time.time()
    load.start()
    peak_in_flight = peak_callers = 0
    while time.time() - t0 < seconds and (max_calls is None or load.placed < max_calls):
        peak_in_flight = max(peak_in_flight, load.in_flight)
        peak_callers = max(peak_callers, load.users)
        time.sleep(0.05)
    load.stop(wait=hold + invite_timeout + 5)
    c = counts(records)
    setup = [r.answered_at - r.started_at for r in records if r.answered_at]
    media = [r for r in records if r.answered and r.media and r.rtp_expected]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {**c, "offered_cps": cps, "seconds": seconds,
            "place_seconds": load.last_placed_at - load.started_at,
            "achieved_cps": (c["attempts"] - 1) / max(load.last_placed_at - load.started_at, 1e-9),
            "failure_ratio": (c["attempts"] - c["completed"]) / c["attempts"] if c["attempts"] else 1.0,
            "peak_in_flight": peak_in_flight, "peak_callers": peak_callers,
            "setup_p95": percentile(setup, 95), "setup_mean": sum(setup) / len(setup) if setup else None,
            "max_rss_kib": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "load_cpu_seconds": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
            "rtp": {"calls": len(media), "sent": sum(r.rtp_sent for r in media),
                    "sent_late": sum(r.rtp_send_late for r in media),
                    "expected": sum(r.rtp_expected for r in media),
                    "received": sum(min(r.rtp_received, r.rtp_expected) for r in media),
                    "srtp_calls": sum(r.srtp for r in media),
                    "srtp_auth_failed": sum(r.srtp_auth_failed for r in media)}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entry", help="ip:port to send INVITEs to (UDP)")
    ap.add_argument("--entry-json", help="an inventory entry point as JSON (transport, tls, "
                    "auth, srtp: README \"Target inventory\"), instead of --entry")
    ap.add_argument("--cps", type=float, default=5)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rtp-share", type=float, default=0.0)
    ap.add_argument("--calls", type=int, help="stop after placing this many calls")
    ap.add_argument("--srtp", choices=("off", "offer", "require"), default="off",
                    help="SRTP media with SDES keys, as an entry point's srtp:")
    a = ap.parse_args(argv)
    if bool(a.entry) == bool(a.entry_json):
        ap.error("give --entry or --entry-json")
    entry = EntryPoint.model_validate(json.loads(a.entry_json)) if a.entry_json else a.entry
    print(json.dumps(run(entry, a.cps, a.hold, a.seconds, a.rtp_share, max_calls=a.calls,
                         srtp=a.srtp)))


if __name__ == "__main__":
    main()
