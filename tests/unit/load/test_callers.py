"""Caller pool sizing: set-ups only, and the time a set-up may spend on dead addresses."""
from harness.load.callers import callers_for, callers_typical, failover_span
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec


def test_the_hold_needs_no_caller():
    short, long = LoadSpec(hold=2), LoadSpec(hold=600)
    assert callers_for(short, 10) == callers_for(long, 10) == 10 * (8 + 1) + 2  # INVITE timeout 8 s
    assert callers_typical(short, 10) == callers_typical(long, 10) == 12


def test_fallback_addresses_lengthen_the_longest_set_up():
    plain = EntryPoint(name="a", address="10.0.0.1:5060")
    two_sites = EntryPoint(name="b", address="10.0.0.1:5060", fallback=["10.0.1.1:5060", "10.0.2.1:5060"],
                           failover_timer=2.5)
    assert failover_span([plain]) == 0.0
    assert failover_span([plain, two_sites]) == 5.0  # two dead addresses before the last
    assert callers_for(LoadSpec(), 4, failover_span([two_sites])) == 4 * (5 + 8 + 1) + 2
