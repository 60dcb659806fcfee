"""Steady-state check: every part of the target answers, on every transport it serves, and
carries media.

SIP OPTIONS to every node on each of its transports (a server whose UDP side died while
its TCP side and process stay up must not look healthy) and to every entry point on its
own; then one short call with RTP through every UDP entry point, which must be answered
and carry most of its media both ways. How it ends is not judged here: a BYE that goes
astray is what a drill is there to find (and name), not a reason to refuse to run one.
The test calls' Call-IDs begin with HEALTH_CALL_PREFIX, so a truth check can leave them out.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness.scenario.inventory import EntryPoint, TargetInventory, split_address
from harness.sip.probe import options_ping
from harness.sip.uac import HEALTH_CALL_PREFIX, CallOptions, place_call

MEDIA_HOLD = 1.0        # seconds of RTP in each test call
MEDIA_HEARD = 0.8       # share of its packets each way a healthy path carries at least


def _signalling(inv: TargetInventory) -> list[str]:
    problems = []
    parts = [(n.name, n.sip, t) for n in inv.nodes if n.sip for t in n.transports] + \
            [(e.name, e.address, e.transport) for e in inv.entry_points]
    for name, addr, transport in parts:
        status = options_ping(split_address(addr), timeout=0.5, transport=transport)
        if status != 200:
            problems.append(f"{name} ({addr}, {transport.upper()}) " +
                            ("does not answer SIP OPTIONS" if status == 0 else f"answers {status}"))
    return problems


def media_problem(entry: EntryPoint) -> str | None:
    """One test call with RTP through `entry`; what is wrong with it, or None."""
    rec = place_call(entry.addr, CallOptions(hold=MEDIA_HOLD, invite_timeout=4.0, bye_timeout=2.0,
                                             local_ip=entry.caller_ip, transport=entry.transport,
                                             outbound_proxy=entry.outbound_proxy,
                                             call_id_prefix=HEALTH_CALL_PREFIX), entry.name)
    where = f"{entry.name} ({entry.address})"
    if not rec.answered:
        return f"{where}: a test call was not answered ({rec.reason})"
    heard = min(rec.rtp_received, rec.rtp_expected) / max(rec.rtp_expected, 1)
    if heard < MEDIA_HEARD:
        return (f"{where}: a test call carried too little media back: {rec.rtp_received} of "
                f"{rec.rtp_expected} packets heard by the caller")
    if rec.rtp_up_expected and rec.rtp_up_received / rec.rtp_up_expected < MEDIA_HEARD:
        return (f"{where}: a test call's media did not reach the hotline: {rec.rtp_up_received} "
                f"of {rec.rtp_up_expected} packets")
    return None


def _media(inv: TargetInventory) -> list[str]:
    entries = [e for e in inv.entry_points if e.transport == "udp"]
    if not entries:
        return []
    with ThreadPoolExecutor(len(entries)) as pool:
        return [p for p in pool.map(media_problem, entries) if p]


def steady_state(inv: TargetInventory, within: float = 5.0) -> tuple[bool, list[str]]:
    """(healthy, problems), retrying for up to `within` seconds before giving up."""
    deadline = time.time() + within
    while True:
        problems = _signalling(inv)
        if not problems:
            problems = _media(inv)
        if not problems or time.time() >= deadline:
            return not problems, problems
        time.sleep(0.2)
