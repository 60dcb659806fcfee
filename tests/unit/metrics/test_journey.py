"""Contact-centre figures on hand-worked journeys: ASA, abandonment with short abandons left
out, service level with abandons against it, waits, agent-answer and IVR failure rates."""
import pytest

from harness.metrics.journey import journey_figures, per_interval, wait_of
from harness.metrics.records import CallRecord


def call(i, wait=None, gave_up=None, prompt=True, queued=True):
    """A journey call queued at 100 + i: answered after `wait` s, or gone after `gave_up` s."""
    r = CallRecord(call_id=f"c{i}", started_at=99.0 + i, journey=True)
    r.answered_at = r.started_at + 0.2  # the IVR's 200
    r.prompt_at = 99.5 + i if prompt else None
    r.queued_at = 100.0 + i if queued else None
    if wait is not None:
        r.agent_at = r.queued_at + wait
    if gave_up is not None:
        r.abandoned_at = r.queued_at + gave_up
    return r


def test_the_figures_of_ten_hand_worked_calls():
    calls = [call(0, wait=0), call(1, wait=10), call(2, wait=20), call(3, wait=30),
             call(4, wait=60), call(5, gave_up=3), call(6, gave_up=40), call(7, gave_up=120),
             call(8, prompt=False, queued=False), CallRecord(call_id="plain")]
    f = journey_figures(calls)
    assert (f["calls"], f["answered"], f["abandoned"], f["short_abandons"]) == (9, 5, 2, 1)
    assert f["asa"] == pytest.approx((0 + 10 + 20 + 30 + 60) / 5)
    assert f["abandonment"] == pytest.approx(2 / 7)   # the 3 s caller left out
    assert f["service_level"] == pytest.approx(3 / 7)  # 0, 10, 20 s within 20 s; abandons count
    assert "abandoned" in f["service_formula"] and f["service_time"] == 20
    assert f["wait"]["p50"] == 20 and f["wait"]["max"] == 60
    assert f["wait"]["p90"] == pytest.approx(48.0)     # between 30 and 60, linear
    assert f["agent_answer_rate"] == pytest.approx(5 / 9)
    assert f["ivr_failure"] == pytest.approx(1 / 9)


def test_thresholds_on_both_sides():
    # a caller gone at exactly the short-abandon threshold counts as abandoning; one answered
    # at exactly T is within it
    f = journey_figures([call(0, gave_up=5.0), call(1, gave_up=4.99), call(2, wait=20.0),
                         call(3, wait=20.01)])
    assert (f["abandoned"], f["short_abandons"]) == (1, 1)
    assert f["service_level"] == pytest.approx(1 / 3)
    assert journey_figures([call(0, gave_up=8)], short_abandon=10)["abandonment"] is None


def test_nothing_to_judge_and_intervals():
    empty = journey_figures([CallRecord(call_id="x")])
    assert empty["calls"] == 0 and empty["asa"] is None and empty["wait"]["p50"] is None
    assert wait_of(call(0)) is None
    spread = [call(i, wait=5) for i in (0, 10, 899, 900, 1800)]
    rows = per_interval(spread, start=100.0)
    assert [(r["from"], r["calls"]) for r in rows] == [(100.0, 3), (1000.0, 1), (1900.0, 1)]


def test_the_connection_rate_is_judged_where_calls_have_a_journey():
    from harness.metrics.sla import where_judged
    journeys, plain = [call(0, wait=1)], [CallRecord(call_id="p")]
    assert where_judged({"agent_answer_rate": None}, set(), journeys)["agent_answer_rate"] == 0.9
    assert where_judged({"agent_answer_rate": None}, set(), plain)["agent_answer_rate"] is None
    kept = where_judged({"agent_answer_rate": None}, {"agent_answer_rate"}, journeys)
    assert kept["agent_answer_rate"] is None  # the scenario switched it off


def test_destinations_turned_away_and_the_queue_each_second():
    from harness.metrics.alarms import alarm_timeline
    from harness.metrics.journey import occupancy
    a, b, c = call(0, wait=2.5), call(1, wait=0.5), call(2, gave_up=6)
    a.answered_by, b.answered_by = "sales", "care"
    a.ended_at, b.ended_at, c.ended_at = 105.0, 104.0, 108.0
    away = call(3)
    away.turned_away, away.ended_at = "announcement", 103.5
    f = journey_figures([a, b, c, away])
    assert f["turned_away"] == 1 and f["answered"] == 2 and f["abandoned"] == 1
    assert f["destinations"] == {"agents: sales": 0.25, "agents: care": 0.25, "announcement": 0.25}
    assert f["agent_answer_rate"] == 0.5  # the turned-away caller reached no one
    occ = occupancy([a, b, c, away], 100.0, 110.0)
    # a waits 100-102.5, b 101-101.5, c 102-108, the turned-away caller 103-103.5
    assert occ["waiting"] == [1, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0]
    # a with an agent 102.5-105, b 101.5-104
    assert occ["with_agent"] == [0, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0]
    # the alarm levels read the agent's answer on a journey, not the IVR's 200
    for r in (a, b, c, away):
        r.outcome = "completed"
    rates = [rate for _, rate, _ in alarm_timeline([a, b, c, away], 99.0, 104.0, 10.0)]
    assert rates[-1] == pytest.approx(0.5)
