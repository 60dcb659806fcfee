"""Steady-state check: every node and every entry point of the target answers SIP OPTIONS."""
from __future__ import annotations

import time

from harness.scenario.inventory import TargetInventory, split_address
from harness.sip.probe import options_ping


def steady_state(inv: TargetInventory, within: float = 5.0) -> tuple[bool, list[str]]:
    """(healthy, problems), retrying for up to `within` seconds before giving up."""
    deadline = time.time() + within
    while True:
        problems = []
        for name, addr, transport in [(n.name, n.sip, "udp") for n in inv.nodes if n.sip] + \
                [(e.name, e.address, e.transport) for e in inv.entry_points]:
            status = options_ping(split_address(addr), timeout=0.5, transport=transport)
            if status != 200:
                problems.append(f"{name} ({addr}) " +
                                ("does not answer SIP OPTIONS" if status == 0 else f"answers {status}"))
        if not problems or time.time() >= deadline:
            return not problems, problems
        time.sleep(0.2)
