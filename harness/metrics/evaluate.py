"""From records to figures and verdicts: the one place a run's numbers are computed.

Pure: the runner calls it at the end of a drill, `drill report` calls it again
on saved records, and both must get the same answer.
"""
from __future__ import annotations

from harness.metrics import alarms, calls, failover
from harness.metrics.capacity import STEP_TARGETS, in_window, knee, step_misses
from harness.metrics.detect import time_to_detect
from harness.metrics.dr import probe_figures
from harness.metrics.diagnose import findings
from harness.metrics.records import CallRecord, FaultWindow
from harness.metrics.sessions import session_metrics
from harness.metrics.sla import Verdict, verdicts
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


def _sum_pairs(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def evaluate(records: list[CallRecord], faults: list[FaultWindow], sla: dict, *,
             max_gap: float, pdd_good: float | None = None,
             rule: failover.RecoveryRule = failover.RecoveryRule(), alarm_window: float,
             run_start: float, run_end: float,
             steady_state_after: bool | None, acks: list[dict] = (),
             capacity_steps: list[dict] | None = None, probes: list[dict] = ()) -> dict:
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
    media = calls.media_summary(records)
    voice = voice_report(records, faults, max_gap)
    sessions = session_metrics(records)
    pdd = calls.pdd_stats(records)
    rate = calls.answer_rate(records)
    fo_times = [f["failover_time"] for f in per_fault]
    worst_fo = None if any(t is None for t in fo_times) else max(fo_times, default=None)
    cont = _sum_pairs([f["continuity"] for f in per_fault])
    bystanders = _sum_pairs([f["bystander_continuity"] for f in per_fault])
    no_fault = not per_fault
    measured = {
        "answer_rate": (rate, f"{sum(r.answered for r in records)}/{len(records)} attempts", False),
        "failover_time": (worst_fo, "never recovered" if per_fault and worst_fo is None
                          else f"worst of {len(per_fault)} fault(s)", no_fault),
        "traffic_shift": _worst_shift(per_fault),
        "outage": (max((f["outage"]["length"] for f in per_fault), default=None),
                   f"longest of {len(per_fault)} fault(s)", no_fault),
        "dropped_call_rate": (calls.dropped_call_rate(records), "", True),
        "call_continuity": (failover.share(cont), f"{cont[0]}/{cont[1]} calls", cont[1] == 0),
        "bystander_continuity": (failover.share(bystanders), f"{bystanders[0]}/{bystanders[1]} calls",
                                 bystanders[1] == 0),
        "pdd_p95": (pdd["p95"], "", False),
        "media_loss": (media["loss"], f"{media['calls']} calls with media", media["calls"] == 0),
        **_voice_and_session_targets(voice, sessions),
        "steady_state_after": (None if steady_state_after is None else float(steady_state_after),
                               "target healthy after rollback", False),
    }
    fault_at = min((f.started_at for f in faults), default=None)
    dr = [probe_figures(p, fault_at) for p in probes]
    measured.update(_dr_targets(dr, [f["calls_back"]["seconds"] for f in per_fault]))
    ttd = time_to_detect([f.started_at for f in faults], [a["ts"] for a in acks])
    measured["time_to_detect"] = (ttd, "no acknowledgement after the fault" if ttd is None
                                  else f"first acknowledgement by {_first_ack_by(acks, faults)}", False)
    capacity = None
    if capacity_steps is not None:
        steps = []
        for s in capacity_steps:
            calls_in_step = in_window(records, s["started"], s["ended"])
            steps.append({**s, "attempts": len(calls_in_step), "missed": step_misses(calls_in_step, sla)})
        capacity = {"steps": steps, "knee": knee(steps)}
        sla = {k: v for k, v in sla.items() if k not in STEP_TARGETS}  # judged per step instead
        if sla.get("capacity") is None and steps:
            sla["capacity"] = steps[0]["rate"]  # at least the first step must hold
        measured["capacity"] = (capacity["knee"], f"knee of {len(steps)} step(s)", False)
    else:
        measured["capacity"] = (None, "no capacity_search in this scenario", False)
    vs: list[Verdict] = verdicts(sla, measured)
    return {
        "counts": calls.counts(records),
        "answer_rate": rate,
        "pdd": pdd,
        "dropped_call_rate": calls.dropped_call_rate(records),
        "media": media,
        "voice": voice,
        "sessions": sessions,
        "dr": dr,
        "answered_by_node": calls.calls_by_node(records),
        "good_calls": {"pdd_good": pdd_good, "pre_fault_share": baseline, "setup_time": setup,
                       "recovery_tolerance": rule.tolerance, "slow_limit": slow,
                       "pre_fault_slow_share": slow_share, "quiet_gap": quiet},
        "faults": per_fault,
        "detection": {"acks": list(acks), "time_to_detect": ttd,
                      "first_fault_at": min((f.started_at for f in faults), default=None)},
        "capacity": capacity,
        "alarm_worst": alarms.worst_level(timeline),
        "alarm_timeline": [{"t": t - run_start, "answer_rate": r, "level": lvl}
                           for t, r, lvl in timeline],
        "findings": findings(records),
        "verdicts": [v.to_dict() for v in vs],
        "passed": all(v.passed for v in vs),
    }


def _silent(voice: dict, key: str) -> str:
    """`k of n calls with media`, and the nodes whose calls were silent, worst first."""
    o = voice["overall"]
    nodes = sorted(((n or "(no node)", c[key], c["calls"]) for n, c in voice["per_node"].items()
                    if c[key]), key=lambda x: -x[1] / x[2])
    where = "; ".join(f"{n}: {k} of {m}" for n, k, m in nodes)
    return f"{o[key]} of {o['calls']} calls with media" + (f" ({where})" if where else "")


def _voice_and_session_targets(voice: dict, s: dict) -> dict:
    o = voice["overall"]
    n_media, n = o["calls"], s["attempts"]
    media_detail = f"{n_media} calls with media"
    return {
        "mos_p5": (o["mos_p5"], media_detail, n_media == 0),
        "mos_p50": (o["mos_p50"], media_detail, n_media == 0),
        "dead_air": (o["dead_air_share"], _silent(voice, "dead_air"), n_media == 0),
        "one_way_audio": (o["one_way_share"], _silent(voice, "one_way"), n_media == 0),
        **{k: (s[k], f"RFC 6076 over {n} INVITEs" if k not in ("asr", "ner")
               else f"E.411 over {n} attempts", n == 0)
           for k in ("ser", "seer", "isa", "scr", "asr", "ner")},
        "srd_p95": (s["srd"]["p95"], f"{s['srd']['n']} answered INVITEs", s["srd"]["n"] == 0),
        "sdd_p95": (s["sdd"]["p95"], f"{s['sdd']['n']} BYEs", s["sdd"]["n"] == 0),
    }


def _dr_targets(dr: list[dict], calls_back: list[float | None]) -> dict:
    """RPO, RTO and lag targets over every probe (the worst one counts). RTO is the later of
    calls back (the worst fault's first answer through a node it did not take out) and
    writes back on a new primary."""
    writes_back = [d["rto_writes"]["seconds"] for d in dr if d["rto_writes"]]
    parts = [*calls_back, *writes_back]
    rto = (None if not parts or None in parts else max(parts),
           "calls and writes back" if writes_back else
           "calls back" if dr else "calls back (no data probe)", not dr and not calls_back)
    if not dr:
        none = (None, "no data probe in this scenario", False)
        return {k: none for k in ("rpo", "rpo_writes", "replication_lag_p99", "cdrs_lost")} \
            | {"rto": rto}
    known = [d["rpo"] for d in dr if d["rpo"] is not None]
    unknown = [d["probe"] for d in dr if d["rpo"] is None]
    rpo_detail = f"surviving rows unreadable for {', '.join(unknown)}" if unknown else \
        f"{sum(r['lost'] for r in known)} of {sum(r['acked'] for r in known)} acknowledged writes lost"
    lags = [d["lag"]["p99"] for d in dr if d["lag"]["p99"] is not None]
    out = {
        "rpo": (None if unknown else max(r["seconds"] for r in known), rpo_detail, False),
        "rpo_writes": (None if unknown else float(sum(r["lost"] for r in known)), rpo_detail, False),
        "rto": rto,
        "replication_lag_p99": (max(lags) if lags else None,
                                f"{sum(d['lag']['samples'] for d in dr)} samples", False),
        "cdrs_lost": _cdrs_lost(dr),
    }
    checked = [d for d in dr if d.get("primaries") is not None]
    if checked:  # only where a probe names several servers
        out["primaries"] = (float(max(len(d["primaries"]) for d in checked)),
                            "; ".join(f"{d['probe']}: {', '.join(d['primaries']) or 'none'}"
                                      for d in checked), False)
    return out


def _cdrs_lost(dr: list[dict]) -> tuple[float | None, str, bool]:
    checks = [d["cdr"] for d in dr if d.get("cdr")]
    if not checks:
        return None, "no CDR check in the data probes", False
    lost = sum(c["lost"] for c in checks)
    return float(lost), f"{lost} of {sum(c['checked'] for c in checks)} answered calls without a CDR", False


def _worst_shift(per_fault: list[dict]) -> tuple[float | None, str, bool]:
    if not per_fault:
        return None, "", True
    never = [f["fault_id"] for f in per_fault if f["shift"]["never"]]
    if never:
        return None, f"traffic never shifted away during {', '.join(never)}", False
    return max(f["traffic_shift"] for f in per_fault), "", False


def _first_ack_by(acks: list[dict], faults: list[FaultWindow]) -> str:
    first = min(f.started_at for f in faults)
    return min((a for a in acks if a["ts"] >= first), key=lambda a: a["ts"]).get("by", "?")
