"""Outage, recovery and traffic shift on the failure shapes that fooled "K answered in a row":
a blackout with retransmitted INVITEs, a half outage, an SBC that never marks a node down.
Every expected figure is worked out by hand in the comments."""
import random
import pytest
from harness.metrics import failover
from harness.metrics.evaluate import evaluate
from harness.metrics.records import CallRecord, FaultWindow


RULE = failover.RecoveryRule(window=2.0, min_attempts=10, tolerance=0.10)


def blackout_calls(cps, t_end, cut_from, cut_to):
    """One call every 1/cps s through a two-way cut in [cut_from, cut_to): an INVITE sent in it,
    or its 200 (10 ms later) due in it, is lost and the INVITE retransmitted (Timer A); each
    call is answered 10 ms after its first send that gets through both ways."""
    out = []
    lost = lambda t: cut_from <= t < cut_to  # noqa: E731
    for i in range(int(t_end * cps)):
        s = i / cps
        sends = [s + d for d in TIMER_A if not (lost(s + d) or lost(s + d + 0.01))]
        out.append(attempt(s, sends[0] + 0.01 if sends else None))
    return out


TIMER_A = (0.0, 0.5, 1.5, 3.5, 7.5)  # RFC 3261 INVITE retransmissions, from the first send


def attempt(start, answered_at=None, node="pbx-2", pdd=0.01):
    rec = CallRecord(call_id=f"c{start:.2f}", started_at=start, node=node if answered_at else "")
    if answered_at is not None:
        rec.ringing_at = answered_at
        rec.answered_at = answered_at
        rec.outcome = "completed"
    return rec


def test_blackout_with_retransmissions_is_an_outage_of_its_length():
    # 10 calls/s, a 5 s blackout from 5.0 to 10.0. Last answer before: call 4.9 at 4.91.
    # First answers after: 10.01 (call 10.0, and the retransmissions of 8.5 and 9.5), placed
    # one set-up time (10 ms) before. Gap 4.91 -> 10.0, less half the 0.1 s spacing at each
    # edge: 4.96 -> 9.95, 4.99 s (the last 10 ms before the cut: calls whose 200 it caught).
    recs = blackout_calls(10, 20, 5.0, 10.0)
    fault = FaultWindow("cut", "net.cut", "pbx-1", 5.0, 10.0, ("pbx-1",))
    assert failover.setup_time(recs) == pytest.approx(0.01)
    out = failover.outage(recs, fault, setup=0.01)
    assert out.length == pytest.approx(4.99, abs=1e-6)
    assert out.resolution == pytest.approx(0.1)
    assert out.last_answered == "c4.90" and out.over
    # No attempt failed (the old rule said "failover 0 s"). Recovery: the first good call of
    # the recovered stretch is answered at 10.01 (a call placed at 9.5, PDD 0.51 s).
    rec = failover.recovery(recs, fault, baseline=1.0, pdd_good=1.0, rule=RULE)
    assert rec.failover_time == pytest.approx(5.01, abs=1e-6)
    assert rec.failover_time >= 5.0
    shift = failover.traffic_shift(recs, fault, limit=1.0, rule=RULE)
    assert shift.never and shift.value is None  # the only node: nowhere to shift to


@pytest.mark.parametrize("cps", [20, 100])
@pytest.mark.parametrize("length", [1, 2, 5, 10])
def test_blackout_outage_within_resolution_at_any_phase(cps, length):
    # the blackout starts at an arbitrary phase between two attempts
    for phase in (0.0, 0.3, 0.77):
        cut = 5.0 + phase / cps
        recs = blackout_calls(cps, 25, cut, cut + length)
        out = failover.outage(recs, FaultWindow("b", "udp.blackhole", "carrier-a", cut, cut + length),
                              setup=0.01)
        assert abs(out.length - length) <= 1 / cps  # at most half a spacing per edge


def test_half_outage_recovery_is_not_ended_by_a_lucky_run():
    # 10 calls/s; from 10 to 20 s a hash-dispatched half of the calls fail. The pattern holds
    # runs of 5+ answered calls early on (the old rule ended the outage there).
    rng = random.Random(3)
    recs = []
    for i in range(300):
        s = i / 10
        fails = 10 <= s < 20 and rng.random() < 0.5
        recs.append(attempt(s, None if fails else s + 0.01))
    during = [r.answered for r in recs if 10 <= r.started_at < 20]
    runs = "".join("1" if a else "0" for a in during)
    assert "11111" in runs[:40]  # a lucky run in the first 4 s of the outage
    fault = FaultWindow("half", "process.kill", "pbx-1", 10.0, 20.0, ("pbx-1",))
    rec = failover.recovery(recs, fault, baseline=1.0, pdd_good=1.0, rule=RULE)
    assert 10.0 - RULE.window <= rec.failover_time <= 10.0 + RULE.window
    assert rec.bad_attempts == runs[:int(rec.failover_time * 10)].count("0")


def test_sbc_that_never_marks_the_node_down():
    # 10 calls/s; pbx-1 dead from 10 to 30 s. Every other new call tries it first and is
    # retried on pbx-2 after 1 s (PDD 1.01 s: not a good call); the rest go to pbx-2 at once.
    recs = []
    for i in range(400):
        s = i / 10
        slow = 10 <= s < 30 and i % 2 == 0
        recs.append(attempt(s, s + (1.01 if slow else 0.01), node="pbx-2"))
    fault = FaultWindow("kill", "process.kill", "pbx-1", 10.0, 30.0, ("pbx-1",))
    shift = failover.traffic_shift(recs, fault, limit=1.0, rule=RULE)
    assert shift.never and shift.seconds == pytest.approx(19.8)  # last slow call at 29.8
    rec = failover.recovery(recs, fault, baseline=1.0, pdd_good=1.0, rule=RULE)
    # from a good call at t the window of 20 attempts holds the slow calls in [t, 30):
    # at most 2 (10 %) from 29.5 on, so recovery is the call at 29.5, answered at 29.51
    assert rec.failover_time == pytest.approx(19.51, abs=1e-6)
    # never silent for long: answers 9.91 -> 10.11 (the call at 10.0 waits), less one spacing
    assert failover.outage(recs, fault).length == pytest.approx(0.1, abs=1e-6)
    out = evaluate(recs, [fault], {"traffic_shift": 30.0, "failover_time": 30.0},
                   max_gap=1.0, alarm_window=10, run_start=0, run_end=40, steady_state_after=True)
    v = {x["target"]: x for x in out["verdicts"]}
    assert not v["traffic_shift"]["passed"] and "never shifted" in v["traffic_shift"]["detail"]
    assert v["failover_time"]["passed"] and not out["passed"]


def test_a_node_loss_that_shifts_quickly():
    # 10 calls/s alternating pbx-1/pbx-2; pbx-1 killed at 10.0; its calls fail until the SBC
    # marks it down at 10.9 (attempts 10.0, 10.2, 10.4, 10.6, 10.8 fail); then all on pbx-2.
    recs = []
    for i in range(300):
        s = round(i / 10, 1)
        node = "pbx-1" if i % 2 == 0 and s < 10 else "pbx-2"
        fails = 10 <= s < 10.9 and i % 2 == 0
        recs.append(attempt(s, None if fails else s + 0.01, node=node))
    fault = FaultWindow("kill", "process.kill", "pbx-1", 10.0, 20.0, ("pbx-1",))
    shift = failover.traffic_shift(recs, fault, limit=1.0, rule=RULE)
    assert not shift.never and shift.value == pytest.approx(0.8)
    rec = failover.recovery(recs, fault, baseline=1.0, pdd_good=1.0, rule=RULE)
    # windows of 20 attempts from a good call at t hold the failures in [t, 10.9): at most
    # 2 of 20 (10 %) from 10.5 on, so the recovered stretch begins with the call at 10.5
    assert rec.failover_time == pytest.approx(0.51, abs=1e-6) and rec.bad_attempts == 3
    # answers every 0.2 s while every other call fails: a gap of two spacings, less one
    assert failover.outage(recs, fault).length == pytest.approx(0.1, abs=1e-6)


def test_no_effect_and_never_over():
    recs = [attempt(i / 10, i / 10 + 0.01) for i in range(200)]
    fault = FaultWindow("noop", "udp.latency", "carrier-a", 10.0, 15.0)
    assert failover.recovery(recs, fault, 1.0, 1.0, RULE).failover_time == 0.0
    assert failover.traffic_shift(recs, fault, 1.0, RULE).value == 0.0
    assert failover.outage(recs, fault).length == pytest.approx(0.0, abs=1e-6)
    # service stops at 12 and never comes back within the records
    dead = [attempt(i / 10, i / 10 + 0.01 if i < 120 else None) for i in range(200)]
    out = failover.outage(dead, fault)
    assert not out.over and out.length == pytest.approx(19.9 - 11.96, abs=1e-6)
    rec = failover.recovery(dead, fault, 1.0, 1.0, RULE)
    assert rec.failover_time is None and rec.bad_attempts == 80


def test_next_fault_does_not_hold_up_recovery():
    # fault A (10..12) breaks calls until 12; fault B from 16 breaks them for good.
    recs = [attempt(i / 10, None if 10 <= i / 10 < 12 or i / 10 >= 16 else i / 10 + 0.01)
            for i in range(250)]
    a = FaultWindow("a", "net.cut", "pbx-1", 10.0, 12.0)
    b = FaultWindow("b", "net.cut", "pbx-1", 16.0, None)
    out = evaluate(recs, [a, b], {"failover_time": 30.0}, max_gap=1.0, alarm_window=10,
                   run_start=0, run_end=25, steady_state_after=True)
    fa, fb = out["faults"]
    assert fa["failover_time"] == pytest.approx(2.01, abs=1e-6)
    assert fb["failover_time"] is None and not fb["recovered"]
    # answers stop after 9.91 and start again at 12.01 (placed 12.0): 9.96 -> 11.95
    assert fa["outage"]["length"] == pytest.approx(1.99, abs=1e-6)


def test_pdd_good_default():
    pre = [attempt(i, i + 0.2) for i in range(20)]
    assert failover.pdd_good_default(pre) == pytest.approx(1.0)
    slow = [attempt(i, i + 0.5) for i in range(20)]
    assert failover.pdd_good_default(slow) == pytest.approx(1.5)
    assert failover.pdd_good_default([]) == 1.0


def test_generator_problems():
    from harness.metrics.generator import generator_problems
    fine = {"offered": 1000, "placed": 1000, "late": 50, "skipped": 0, "unplaced": 0,
            "loop_lag_p99": 0.25}
    assert generator_problems(fine) == []  # 5 % late and a 250 ms p99 stall are limits, not over
    behind = {**fine, "late": 40, "skipped": 11}
    assert "51 of 1000" in generator_problems(behind)[0]
    stalled = {**fine, "loop_lag_p99": 0.26}
    assert "p99 260 ms" in generator_problems(stalled)[0]
    lost = generator_problems(None, {"expected": 3, "reported": 2})
    assert lost == ["load workers lost: 1 of 3 never reported their calls"]


def test_calls_still_held_when_the_records_end_are_no_outage():
    # a fault open to the end (a site stays down); every call answered, each held 6 s, so the
    # last ones end 6 s after the last attempt: no new call went unanswered, no outage
    recs = [attempt(i / 4, i / 4 + 0.02) for i in range(96)]
    for r in recs:
        r.ended_at = r.started_at + 6.0
    fault = FaultWindow("site", "docker.kill", "site-a", 8.0, None)
    out = failover.outage(recs, fault)
    assert out.length == pytest.approx(0.0, abs=0.2)


def test_calls_back_is_the_first_new_call_answered_by_a_node_the_fault_did_not_take_out():
    # site A dies at 10.0 (its SBC and both PBX nodes with it). A call placed at 9.9 is answered
    # by pbx-a1 at 10.05 (set up before the fault: proves nothing); one placed at 10.2 is
    # answered late by pbx-a2 (a node of the dead site: impossible in life, left out here);
    # through site B, a call placed at 12.0 is answered at 13.55 (retransmitted) and one placed
    # at 12.5 at 12.6: the first answer through the survivor is 12.6, 2.6 s after the fault
    fault = FaultWindow("lose-a", "docker.kill", "site-a", 10.0, None,
                        nodes=("site-a", "sbc-a", "pbx-a1", "pbx-a2"))
    recs = [attempt(9.9, 10.05, node="pbx-a1"), attempt(10.2, 10.3, node="pbx-a2"),
            attempt(11.0), attempt(12.0, 13.55, node="pbx-b1"), attempt(12.5, 12.6, node="pbx-b2")]
    back = failover.calls_back(recs, fault)
    assert back["seconds"] == pytest.approx(2.6) and back["node"] == "pbx-b2"
    # nothing answered through the survivor: unknown, never 0
    assert failover.calls_back(recs[:3], fault)["seconds"] is None


def test_a_call_that_slipped_through_before_the_fault_bit_is_not_calls_back():
    # an SBC killed at 10.0: a call placed at 10.01 still got through (the kill took a few
    # ms to bite), then nothing was answered until the VIP moved: the call placed at 13.5 and
    # answered at 13.6 through the other site ends the outage, and calls are back then
    fault = FaultWindow("kill-sbc-a", "docker.kill", "sbc-a", 10.0, None, nodes=("sbc-a",))
    recs = [attempt(i / 4, i / 4 + 0.02, node="pbx-a1") for i in range(40)]  # to 9.75
    recs += [attempt(10.01, 10.04, node="pbx-a1"), attempt(10.5, 13.6, node="pbx-b1"),
             attempt(13.5, 13.6, node="pbx-b2"), attempt(14.0, 14.02, node="pbx-b1")]
    gaps = failover.answer_gaps(recs, fault, failover.setup_time(recs))
    bit = failover.where_it_bit(gaps)
    assert bit.length > 3.0 and bit.first_answered in ("c10.50", "c13.50")
    first = next(r.answered_at for r in recs if r.call_id == bit.first_answered)
    back = failover.calls_back(recs, fault, bit, first)
    assert back["seconds"] == pytest.approx(3.6)
    assert failover.calls_back(recs, fault)["seconds"] == pytest.approx(0.04)  # without it


def test_answers_spaced_as_usual_are_no_outage_for_calls_back():
    # a link fault that silenced nothing: 4 calls a second all answered, one answer 30 ms late
    # makes the longest gap overlapping the fault, which is no outage: calls are back at once
    from harness.metrics.evaluate import fault_figures
    recs = [attempt(i / 4, i / 4 + (0.05 if i == 60 else 0.02)) for i in range(96)]
    fault = FaultWindow("cut", "net.cut", "replication", 8.0, 16.0)
    fig = fault_figures(recs, fault, max_gap=1.0, pdd_good=1.0, baseline=1.0, setup=0.02,
                        rule=RULE, horizon=None)
    assert fig["outage"]["length"] <= fig["outage"]["resolution"]
    assert fig["calls_back"]["seconds"] == pytest.approx(0.02)


# -- touched is not the same as slow: dispatchers whose retries land on a 1 s timer --------
KILL = FaultWindow("kill", "process.kill", "pbx-1", 10.0, 30.6, ("pbx-1",))


def dispatcher_calls(retry, flapping, seed, cps=20, t_end=40.0, jitter=0.004):
    """`cps` calls/s hashed over pbx-1 and pbx-2 (set-up 10 ms +- jitter); pbx-1 dead during KILL.
    A call hashed to the dead node is retried on pbx-2 `retry` s later. A correct dispatcher
    marks pbx-1 down after its first failed call, 1 s + set-up in; a flapping one (probes that
    count its own 408 as a reply) marks it up again at once, so a share of new calls keeps
    trying it first (the 0.17 the issue measured) to the fault's very end."""
    rng = random.Random(seed)
    recs, down_at = [], None
    for i in range(int(t_end * cps)):
        s = i / cps
        setup = 0.01 + rng.uniform(-jitter, jitter)
        dead = KILL.started_at <= s < KILL.ended_at
        first_try = "pbx-1" if rng.random() < 0.5 else "pbx-2"
        if dead and first_try == "pbx-1":
            if flapping:
                first_try = "pbx-1" if rng.random() < 0.34 else "pbx-2"
            elif down_at is not None and s >= down_at:
                first_try = "pbx-2"
        late = dead and first_try == "pbx-1"
        if late and down_at is None:
            down_at = s + retry
        node = "pbx-2" if dead else first_try
        rec = attempt(s, s + (retry if late else 0) + setup, node=node)
        recs.append(rec)
    return recs


def figures(recs, fault=KILL, sla=None):
    out = evaluate(recs, [fault], sla or {"traffic_shift": 5.0},
                   max_gap=1.0, alarm_window=10, run_start=0, run_end=40, steady_state_after=True)
    return out, out["faults"][0]


@pytest.mark.parametrize("retry", [0.95, 1.0, 1.05])
def test_a_correct_dispatcher_shifts_whichever_side_of_1_s_its_retries_land(retry):
    # the calls hashed to pbx-1 in the first `retry` s ring `retry` s late: each is touched,
    # whether 0.95 s (under the caller-noticeable 1 s) or 1.05 s; then nothing more
    for seed in range(5):
        recs = dispatcher_calls(retry, flapping=False, seed=seed)
        out, f = figures(recs)
        late = [r for r in recs if KILL.started_at <= r.started_at and r.pdd > 0.5]
        assert f["shift"]["touched"] == len(late) > 0
        assert not f["shift"]["never"]
        assert f["traffic_shift"] == pytest.approx(late[-1].started_at - KILL.started_at)
        # the SBC marks pbx-1 down when the first late call is retried
        assert f["traffic_shift"] < late[0].started_at - KILL.started_at + retry
        assert out["passed"]
        # the surviving node answered all along: calls back at once, no outage to end
        assert f["calls_back"]["seconds"] < 0.1 and f["calls_back"]["node"] == "pbx-2"


@pytest.mark.parametrize("retry", [0.95, 1.0, 1.05])
def test_a_flapping_dispatcher_never_shifts_in_five_runs_of_five(retry):
    # the same drill five times: the verdict must not hang on which calls land near the end
    for seed in range(5):
        recs = dispatcher_calls(retry, flapping=True, seed=seed)
        out, f = figures(recs)
        assert f["shift"]["never"] and f["traffic_shift"] is None
        v = {x["target"]: x for x in out["verdicts"]}
        assert not v["traffic_shift"]["passed"] and not out["passed"]
        # pbx-2 answered all along (the late calls too): calls back is the first answer,
        # not the end of whichever short silence came last, and the silences are reported
        assert f["calls_back"]["seconds"] < 0.1
        assert not f["outage_stands_out"]
        assert f["interruptions"]["count"] >= 1 and f["outage"]["length"] < 1.0


def test_lone_slow_calls_as_often_as_before_the_fault_are_strays():
    # a link fault that touched nothing; two calls during it are slow for the same reason a
    # pre-fault one was (a scheduler hiccup): strays, not a 15 s traffic shift
    recs = [attempt(i / 10, i / 10 + 0.01 + 0.001 * (i % 5)) for i in range(400)]
    for r in recs:
        if r.started_at in (5.0, 14.0, 25.0):
            r.ringing_at = r.answered_at = r.started_at + 0.3
    fault = FaultWindow("cut", "net.cut", "replication", 10.0, 30.0)
    _, f = figures(recs, fault)
    assert f["shift"]["strays"] == 2 and f["traffic_shift"] == 0.0
    # a lone slow call every 2.5 s is more than that share explains (8 against at most
    # 2 x 1 % x 200 + 2 = 6): they count, and the 2 s after the last one, 18 s in, are
    # shorter than twice their 2.5 s rhythm: never shifted
    recs = [attempt(i / 10, i / 10 + 0.01 + 0.001 * (i % 5)) for i in range(400)]
    for r in recs:
        if r.started_at == 5.0 or 10 <= r.started_at < 30 and round(r.started_at * 10) % 25 == 5:
            r.ringing_at = r.answered_at = r.started_at + 0.3
    _, f = figures(recs, fault)
    assert f["shift"]["strays"] == 0 and f["shift"]["touched"] == 8
    assert f["shift"]["never"] and f["shift"]["seconds"] == pytest.approx(18.0)


def test_a_blackout_then_a_later_short_silence_keeps_calls_back_at_the_blackout_end():
    # 10 calls/s; a 5 s blackout from 10.0 (calls in it fail), then at 20.0 three calls fail
    # in a row (0.4 s without an answer): the blackout stands out, calls are back at 15.01
    recs = [attempt(i / 10, None if 10.0 <= i / 10 < 15.0 or 20.0 <= i / 10 < 20.3
                    else i / 10 + 0.01, node="pbx-2") for i in range(400)]
    fault = FaultWindow("kill", "process.kill", "pbx-1", 10.0, 30.0, ("pbx-1",))
    _, f = figures(recs, fault)
    assert f["outage_stands_out"]
    assert f["calls_back"]["seconds"] == pytest.approx(5.01, abs=1e-6)
    assert f["outage"]["length"] == pytest.approx(5.0, abs=0.1)
    assert f["interruptions"]["count"] == 2 and f["interruptions"]["after_back"] == 1
