"""From records to figures and verdicts: the one place a run's numbers are computed.

Pure: the runner calls it at the end of a drill, `drill report` calls it again
on saved records, and both must get the same answer.
"""
from __future__ import annotations

from harness.metrics import alarms, calls, failover
from harness.metrics.capacity import JOURNEY_TARGETS, STEP_TARGETS, in_window, knee, step_misses
from harness.metrics.detect import time_to_detect
from harness.metrics.dr import probe_figures
from harness.metrics.diagnose import findings
from harness.metrics.records import CallRecord, FaultWindow
from harness.metrics.sessions import session_metrics
from harness.metrics.sla import Verdict, verdicts
from harness.metrics.dns import dns_report
from harness.metrics.registration import registration_report
from harness.metrics.journey import INTERVAL, SERVICE_TIME, SHORT_ABANDON, journey_report
from harness.metrics.voice import voice_report


def fault_figures(records: list[CallRecord], fault: FaultWindow, *, max_gap: float,
                  pdd_good: float, baseline: float, setup: float, rule: failover.RecoveryRule,
                  horizon: float | None, slow: float | None = None, slow_share: float = 0.0,
                  quiet: float | None = None) -> dict:
    """Everything measured about one fault, with the calls that bound each figure.

    `slow`: the slow limit "touched" is judged by (None: `pdd_good`), `slow_share` the
    pre-fault share over it; `quiet`: the answer gap beyond which a silence is an
    interruption (None: the outage's resolution)."""
    gaps = failover.answer_gaps(records, fault, setup)
    out = failover.longest(gaps)
    bit = failover.where_it_bit(gaps)
    rec = failover.recovery(records, fault, baseline, pdd_good, rule, horizon)
    shift = failover.traffic_shift(records, fault, pdd_good if slow is None else slow, rule,
                                   slow_share)
    back = failover.calls_back(records, fault, bit,
                               _answered_at(records, bit.first_answered) if bit else None)
    breaks = failover.interruptions(gaps, out.resolution if quiet is None else quiet)
    end = fault.ended_at
    before = calls.calls_by_node(records, None, fault.started_at)
    during = calls.calls_by_node(records, fault.started_at, end)
    after = calls.calls_by_node(records, end, None) if end is not None else {}
    return {
        "fault_id": fault.fault_id, "type": fault.type, "target": fault.target,
        "nodes": list(fault.nodes), "started_at": fault.started_at, "ended_at": end,
        "undo_started": fault.undo_started,
        "outage": {"length": out.length, "start": out.start, "end": out.end,
                   "resolution": out.resolution, "over": out.over,
                   "last_answered": out.last_answered, "first_answered": out.first_answered},
        "recovery": {"at": rec.at, "level": rec.level, "bad_attempts": rec.bad_attempts,
                     "first_good": rec.first_good, "window": rule.window,
                     "min_attempts": rule.min_attempts},
        "failover_time": rec.failover_time, "recovered": rec.at is not None,
        "outage_stands_out": bit is not None,
        "calls_back": back,
        # silences the fault caused besides (or instead of) one outage, e.g. a flapping check
        "interruptions": {"count": len(breaks), "total": sum(g.length for g in breaks),
                          "after_back": sum(1 for g in breaks if back["seconds"] is not None
                                            and g.start >= fault.started_at + back["seconds"]),
                          "longest": [{"start": g.start, "length": g.length}
                                      for g in sorted(breaks, key=lambda g: -g.raw)[:5]]},
        "traffic_shift": shift.value,
        "shift": {"seconds": shift.seconds, "never": shift.never, "touched": shift.touched,
                  "last_touched": shift.last_touched, "strays": shift.strays,
                  "slow_limit": shift.limit},
        "continuity": failover.continuity(records, fault.started_at, max_gap),
        "bystander_continuity": failover.continuity(records, fault.started_at, max_gap,
                                                    exclude_nodes=fault.nodes),
        "answered_by_node": {"before": before, "during": during, "after": after},
    }


def _answered_at(records: list[CallRecord], call_id: str | None) -> float | None:
    return next((r.answered_at for r in records if r.call_id == call_id), None) if call_id else None


def horizon_of(fault: FaultWindow, faults: list[FaultWindow], setup: float) -> float | None:
    """Where judging this fault's recovery stops: one set-up time before the next fault
    that begins after it ended (a call placed then is still being set up when that
    fault strikes); overlapping faults are judged together."""
    end = fault.ended_at if fault.ended_at is not None else float("inf")
    later = [g.started_at for g in faults if g is not fault and g.started_at >= end]
    return min(later) - setup if later else None


def evaluate(records: list[CallRecord], faults: list[FaultWindow], sla: dict, *,
             max_gap: float, pdd_good: float | None = None,
             rule: failover.RecoveryRule = failover.RecoveryRule(), alarm_window: float,
             run_start: float, run_end: float,
             steady_state_after: bool | None, acks: list[dict] = (),
             capacity_steps: list[dict] | None = None, probes: list[dict] = (),
             service_time: float = SERVICE_TIME, short_abandon: float = SHORT_ABANDON,
             interval: float = INTERVAL, registrations: list = (),
             agent_answers: dict[str, str] | None = None, storms: list[float] = ()) -> dict:
    """All figures of a run and one verdict per enabled SLA target.

    `probes`: the data probes' `probe_records` events (DR figures: RPO, RTO, lag).
    `acks`: on-call acknowledgements ({ts, by}) of a game day. `capacity_steps`:
    the rate steps ({rate, started, ended}) of a capacity search; when given,
    the per-call targets are judged per step and the run is judged by its knee.
    """
    records = sorted(records, key=lambda r: r.started_at)
    pre = [r for r in records if not faults or r.started_at < min(f.started_at for f in faults)]
    if pdd_good is None:
        pdd_good = failover.pdd_good_default(pre)
    baseline = failover.good_share(pre, pdd_good)
    baseline = 1.0 if baseline is None else baseline
    setup = failover.setup_time(pre)
    slow = failover.slow_limit(pre)
    slow_share = failover.slow_share(pre, slow)
    quiet = failover.quiet_gap(pre)
    per_fault = [fault_figures(records, f, max_gap=max_gap, pdd_good=pdd_good, baseline=baseline,
                               setup=setup, rule=rule, horizon=horizon_of(f, faults, setup),
                               slow=slow, slow_share=slow_share, quiet=quiet)
                 for f in faults]
    timeline = alarms.alarm_timeline(records, run_start, run_end, alarm_window)
    fig = calls.call_figures(records)
    fig.per_fault = per_fault
    fig.voice = voice_report(records, faults, max_gap)
    fig.sessions = session_metrics(records)
    fig.journey = journey_report(records, faults, run_start, service_time=service_time,
                                 short_abandon=short_abandon, interval=interval)
    fig.registration = registration_report(list(registrations), faults, run_start, run_end,
                                           records, agent_answers, storms)
    fault_at = min((f.started_at for f in faults), default=None)
    fig.dr = [probe_figures(p, fault_at) for p in probes]
    fig.steady_state_after = steady_state_after
    fig.time_to_detect = time_to_detect([f.started_at for f in faults], [a["ts"] for a in acks])
    if fig.time_to_detect is not None:
        fig.first_ack_by = _first_ack_by(acks, faults)
    if capacity_steps is not None:
        steps = []
        for s in capacity_steps:
            calls_in_step = in_window(records, s["started"], s["ended"])
            steps.append({**s, "attempts": len(calls_in_step),
                          "missed": step_misses(calls_in_step, sla, service_time=service_time,
                                                short_abandon=short_abandon)})
        fig.capacity = {"steps": steps, "knee": knee(steps)}
        per_step = STEP_TARGETS + (JOURNEY_TARGETS if fig.journey else ())
        sla = {k: v for k, v in sla.items() if k not in per_step}  # judged per step instead
        if sla.get("capacity") is None and steps:
            sla["capacity"] = steps[0]["rate"]  # at least the first step must hold
    vs: list[Verdict] = verdicts(sla, fig)
    return {
        "counts": calls.counts(records),
        "answer_rate": fig.answer_rate,
        "pdd": fig.pdd,
        "dropped_call_rate": fig.dropped_call_rate,
        "media": fig.media,
        "voice": fig.voice,
        "sessions": fig.sessions,
        "journey": fig.journey,
        "registration": fig.registration,
        "dns": dns_report(records, faults),
        "dr": fig.dr,
        "answered_by_node": calls.calls_by_node(records),
        "good_calls": {"pdd_good": pdd_good, "pre_fault_share": baseline, "setup_time": setup,
                       "recovery_tolerance": rule.tolerance, "slow_limit": slow,
                       "pre_fault_slow_share": slow_share, "quiet_gap": quiet},
        "faults": per_fault,
        "detection": {"acks": list(acks), "time_to_detect": fig.time_to_detect,
                      "first_fault_at": min((f.started_at for f in faults), default=None)},
        "capacity": fig.capacity,
        "alarm_worst": alarms.worst_level(timeline),
        "alarm_timeline": [{"t": t - run_start, "answer_rate": r, "level": lvl}
                           for t, r, lvl in timeline],
        "findings": findings(records),
        "verdicts": [v.to_dict() for v in vs],
        "passed": all(v.passed for v in vs),
    }


def _first_ack_by(acks: list[dict], faults: list[FaultWindow]) -> str:
    first = min(f.started_at for f in faults)
    return min((a for a in acks if a["ts"] >= first), key=lambda a: a["ts"]).get("by", "?")
