"""Metric functions against small hand-computed cases (DESIGN.md definitions)."""
import pytest
from harness.metrics import alarms, calls, failover
from harness.metrics.evaluate import evaluate
from harness.metrics.records import CallRecord, FaultWindow
from harness.metrics.sla import judge


def call(start, ok=True, node="pbx-1", ring=0.1, hold=10.0, outcome=None, gap=0.02, media=True):
    rec = CallRecord(call_id=f"c{start}", node=node if ok else "", started_at=start,
                     hold_planned=hold, media=media, rtp_expected=100, rtp_received=100,
                     rtp_max_gap=gap)
    if ok:
        rec.ringing_at = start + ring
        rec.answered_at = start + ring + 0.1
        rec.outcome = outcome or "completed"
    else:
        rec.outcome = "failed"
    return rec


def test_answer_rate_counts_attempts_started_in_window():
    recs = [call(0), call(1, ok=False), call(2), call(3)]
    assert calls.answer_rate(recs) == 0.75
    assert calls.answer_rate(recs, 1, 3) == 0.5  # attempts at 1 and 2
    assert calls.answer_rate([], 0, 1) is None


def test_pdd_uses_ringing_else_answer():
    a = call(0, ring=0.2)
    b = CallRecord(started_at=10, answered_at=10.5, outcome="completed")  # 200 without 180
    assert a.pdd == pytest.approx(0.2)
    assert b.pdd == pytest.approx(0.5)
    s = calls.pdd_stats([a, b, call(20, ok=False)])
    assert s["p50"] == pytest.approx(0.35)
    assert s["max"] == pytest.approx(0.5)


def test_percentile_interpolates():
    assert calls.percentile([1, 2, 3, 4, 5], 50) == 3
    assert calls.percentile([0, 10], 95) == pytest.approx(9.5)
    assert calls.percentile([], 50) is None


def test_continuity_counts_calls_spanning_the_fault():
    recs = [call(0, node="pbx-1", outcome="dropped"),          # eligible, lost
            call(1, node="pbx-2"),                             # eligible, kept
            call(2, node="pbx-2", gap=1.5),                    # eligible, media gap too long
            call(-20, node="pbx-2"),                           # ended before the fault
            call(6, node="pbx-2")]                             # answered after the fault
    assert failover.continuity(recs, fault_start=5, max_gap=1.0) == (1, 3)
    assert failover.continuity(recs, 5, 1.0, exclude_nodes=("pbx-1",)) == (1, 2)
    assert failover.share((0, 0)) is None


def test_dropped_call_rate_and_media():
    recs = [call(0), call(1, outcome="dropped"), call(2, False), call(3)]
    assert calls.dropped_call_rate(recs) == pytest.approx(1 / 3)
    recs[0].rtp_received = 50
    m = calls.media_summary(recs)
    assert m["loss"] == pytest.approx(50 / 300)
    assert calls.dropped_call_rate([call(0, False)]) is None


@pytest.mark.parametrize("rate,level", [(None, "green"), (0.95, "green"), (0.90, "green"),
                                        (0.87, "yellow"), (0.85, "yellow"), (0.82, "orange"),
                                        (0.79, "red"), (0.0, "red")])
def test_alarm_levels(rate, level):
    assert alarms.alarm_level(rate) == level


def test_alarm_timeline_and_worst():
    recs = [call(t) for t in range(10)] + [call(10 + t, False) for t in range(5)]
    tl = alarms.alarm_timeline(recs, 0, 15, window=5)
    assert tl[4][2] == "green"
    assert tl[-1][1] == 0.0 and tl[-1][2] == "red"
    assert alarms.worst_level(tl) == "red"


def test_judge_directions_and_missing_values():
    assert judge("answer_rate", 0.9, 0.9).passed
    assert not judge("answer_rate", 0.89, 0.9).passed
    assert judge("failover_time", 4.9, 5).passed
    assert not judge("failover_time", None, 5).passed  # never recovered fails
    assert judge("call_continuity", None, 0.9, none_passes=True).passed


def test_evaluate_node_loss_case():
    fault = FaultWindow("kill", "process.kill", "pbx-1", 10, 20, ("pbx-1",))
    recs = [call(t, node="pbx-1" if t % 2 else "pbx-2", hold=5) for t in range(0, 10)]
    recs[9].outcome = "dropped"          # on pbx-1 at 9, spanning the fault
    recs += [call(10, False), call(11, False)] + [call(t, node="pbx-2") for t in range(12, 20)]
    out = evaluate(recs, [fault], {"answer_rate": 0.9, "failover_time": 5, "bystander_continuity": 1.0},
                   max_gap=1.0, alarm_window=10, run_start=0, run_end=20,
                   steady_state_after=True, rule=failover.RecoveryRule(2.0, 2, 0.1))
    f = out["faults"][0]
    # attempts at 10 and 11 failed; the call at 12 (answered 12.2) begins the recovered stretch
    assert f["failover_time"] == pytest.approx(2.2) and f["recovery"]["bad_attempts"] == 2
    # answers 9.2 -> 12.2 (placed 12.0, one 0.2 s set-up before), less 1 s of spacing
    assert f["outage"]["length"] == pytest.approx(3.0 - 0.2 - 1.0)
    assert f["answered_by_node"]["during"] == {"pbx-2": 8}
    assert out["answer_rate"] == pytest.approx(18 / 20)
    v = {x["target"]: x["passed"] for x in out["verdicts"]}
    assert v == {"answer_rate": True, "failover_time": True, "bystander_continuity": True}
    assert out["passed"]


def test_per_second_series():
    from harness.metrics.timeline import per_second
    a = call(100.2, hold=2)
    a.ended_at = a.answered_at + 2           # answered 100.5, up until 102.5
    b = call(101.7, ok=False)
    s = per_second([a, b], start=100, end=104)
    assert s["offered"] == [1, 1, 0, 0] and s["answered"] == [1, 0, 0, 0]
    assert s["failed"] == [0, 1, 0, 0]
    assert s["active"] == [0, 1, 1, 0]


def test_unrouted_byes_are_named_only_when_they_dominate():
    from harness.metrics.diagnose import findings
    lost = [call(t, outcome="dropped") for t in range(4)]
    for r in lost:
        r.dialog_via, r.bye_status = "contact", 0
    fine = [call(10 + t) for t in range(4)]
    for r in fine:
        r.dialog_via, r.bye_status = "record_route", 200
    assert "outbound_proxy: true" in findings(lost + fine)[0]
    assert findings(fine) == []
    proxied = [call(t, outcome="dropped") for t in range(4)]
    for r in proxied:
        r.dialog_via = "outbound_proxy"  # lost BYEs, but not for that reason
    assert findings(proxied) == []


def test_alarm_timeline_from_running_sums_is_the_answer_rate_of_each_window():
    import random
    from harness.metrics.calls import answer_rate
    rng = random.Random(3)
    recs = [CallRecord(call_id=str(i), started_at=rng.uniform(0, 60),
                       answered_at=1.0 if rng.random() < 0.8 else None) for i in range(400)]
    tl = alarms.alarm_timeline(recs, 0, 60, window=7)
    assert len(tl) == 60
    for t, rate, level in tl:
        assert rate == answer_rate(recs, max(0, t - 7), t)
        assert level == alarms.alarm_level(rate)


def test_the_alarm_band_is_one_shape_per_stretch_of_one_level():
    from harness.report.html import alarm_bands
    levels = ["green"] * 5 + ["red"] * 3 + ["green"] * 2
    timeline = [{"t": 1.0 + i + 1e-12 * i, "level": lvl} for i, lvl in enumerate(levels)]
    bands = [(round(a, 6), round(b, 6), lvl) for a, b, lvl in alarm_bands(timeline)]
    assert bands == [(0.0, 5.0, "green"), (5.0, 8.0, "red"), (8.0, 10.0, "green")]
