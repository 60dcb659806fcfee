"""How many callers (Locust users) the load generator keeps: pure sizing, no I/O.

A caller is busy from INVITE to ACK only; an answered call's hold and BYE need
none (sip_load.LoadController.place_one). Kept apart from sip_load so it can be
used and tested without importing Locust, which patches the standard library.
"""
from __future__ import annotations

import math

from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec


def callers_for(spec: LoadSpec, rate: float, failover: float = 0.0) -> int:
    """Callers for `rate` calls/s when every set-up lasts as long as one can: the INVITE
    timeout, after `failover` seconds spent on dead addresses (failover_span). A caller is
    busy only from INVITE to ACK: the hold and the BYE need none (place_one)."""
    return max(2, math.ceil(rate * (failover + spec.invite_timeout + 1.0)) + 2)


def failover_span(entries: list[EntryPoint]) -> float:
    """The longest a call's set-up may wait on addresses that do not answer before its last."""
    return max((len(e.fallback) * e.failover_timer for e in entries), default=0.0)


def callers_typical(spec: LoadSpec, rate: float) -> int:
    """Callers for `rate` calls/s when calls are set up as planned (well within 1 s). The pool
    starts here and grows when spares run low (slow answers, timeouts), up to callers_for:
    an idle caller is a greenlet, and greenlets cost memory."""
    return max(2, math.ceil(rate * 1.0) + 2)


SPARE_CALLERS = 2  # grow the pool when fewer callers than this wait for the next arrival
