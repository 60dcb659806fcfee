"""Blast radius of a planned drill, and whether it fits a game day's limits. Pure.

The timeline of a drill is fixed data (faults at known times for known
lengths), so checking the plan is exact: a drill that passes here cannot
touch more at run time.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.scenario.gameday import BlastRadius
from harness.runner.plan import Drill
from harness.scenario.inventory import Node


@dataclass(frozen=True)
class Radius:
    faults: int
    nodes_at_once: int
    targets: frozenset[str]


def radius(drill: Drill) -> Radius:
    """How many faults, the most nodes under a fault at one time, and every target touched."""
    spans = []
    for planned in drill.faults:
        if isinstance(planned.target, Node):  # links and entry points are not nodes
            end = planned.end if planned.end is not None else drill.scenario.duration
            spans.append((planned.spec.at, end, planned.spec.target))
    most = 0
    for at, _, _ in spans:  # the count only rises at a fault's start
        most = max(most, len({name for s, e, name in spans if s <= at < e}))
    return Radius(len(drill.faults), most, frozenset(planned.spec.target for planned in drill.faults))


def over_limits(r: Radius, limits: BlastRadius) -> list[str]:
    """Why a drill with radius `r` may not be drawn (empty when it may)."""
    why = []
    if r.faults == 0:
        why.append("it injects no fault")
    if limits.max_faults is not None and r.faults > limits.max_faults:
        why.append(f"{r.faults} faults > max_faults {limits.max_faults}")
    if limits.max_nodes_at_once is not None and r.nodes_at_once > limits.max_nodes_at_once:
        why.append(f"{r.nodes_at_once} nodes at once > max_nodes_at_once {limits.max_nodes_at_once}")
    hit = sorted(r.targets & set(limits.forbidden_targets))
    if hit:
        why.append(f"touches forbidden target(s) {', '.join(hit)}")
    return why
