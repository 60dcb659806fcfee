"""Failover metrics of one fault: interruption, failover time, traffic shift, continuity."""
from __future__ import annotations

from dataclasses import dataclass

from harness.metrics.records import CallRecord, FaultWindow


@dataclass
class Interruption:
    """Service interruption caused by a fault (DESIGN.md).

    start: first failed attempt at or after the fault's start, and before its end when it
    has one (a later fault's failures are not this one's) (None: none failed).
    end: start of the first run of K consecutive answered attempts after `start`
    (None: service never came back within the records).
    failover_time: end - fault start; 0 when no attempt failed; None if never recovered.
    """

    start: float | None
    end: float | None
    failover_time: float | None
    failed_attempts: int
    recovered: bool


def interruption(records: list[CallRecord], fault_start: float, k: int = 5,
                 fault_end: float | None = None) -> Interruption:
    attempts = sorted((r for r in records if r.started_at >= fault_start), key=lambda r: r.started_at)
    first_fail = next((i for i, r in enumerate(attempts) if not r.answered
                       and (fault_end is None or r.started_at < fault_end)), None)
    if first_fail is None:
        return Interruption(None, None, 0.0, 0, True)
    run, failed = 0, 0
    for r in attempts[first_fail:]:
        if r.answered:
            run += 1
            if run == 1:
                run_start = r.started_at
            if run == k:
                return Interruption(attempts[first_fail].started_at, run_start,
                                    run_start - fault_start, failed, True)
        else:
            run = 0
            failed += 1
    return Interruption(attempts[first_fail].started_at, None, None, failed, False)


def traffic_shift(records: list[CallRecord], fault: FaultWindow, slow_pdd: float) -> float:
    """Seconds from the fault's start until new calls stopped being touched by it.

    The last attempt during the fault that failed, was answered by a faulted
    node, or waited longer than `slow_pdd` for its first ring marks the end of
    the shift; 0 when no attempt was touched.
    """
    end = fault.ended_at if fault.ended_at is not None else float("inf")
    last = fault.started_at
    for r in records:
        if not fault.started_at <= r.started_at < end:
            continue
        touched = (not r.answered or r.node in fault.nodes
                   or (r.pdd is not None and r.pdd > slow_pdd))
        if touched:
            last = max(last, r.started_at)
    return last - fault.started_at


def continuity(records: list[CallRecord], fault_start: float, max_gap: float,
               exclude_nodes: tuple[str, ...] = ()) -> tuple[int, int]:
    """(kept, eligible) calls across a fault.

    Eligible: answered before the fault started and meant to last past it.
    Kept: ended normally (our BYE got 200) with no media gap above `max_gap`.
    `exclude_nodes` leaves out calls on the faulted nodes (bystander continuity).
    """
    eligible = [r for r in records
                if r.answered_at is not None and r.answered_at < fault_start
                and r.planned_end is not None and r.planned_end > fault_start
                and r.node not in exclude_nodes]
    kept = [r for r in eligible
            if r.outcome == "completed" and (not r.media or r.rtp_max_gap <= max_gap)]
    return len(kept), len(eligible)


def share(kept_eligible: tuple[int, int]) -> float | None:
    kept, eligible = kept_eligible
    return None if eligible == 0 else kept / eligible
