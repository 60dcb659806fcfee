"""Contact-centre figures on hand-worked journeys: ASA, abandonment with short abandons left
out, service level with abandons against it, waits, agent-answer and IVR failure rates."""
import pytest

from harness.metrics.journey import journey_figures, per_interval, wait_of
from harness.metrics.records import CallRecord


def call(i, wait=None, gave_up=None, prompt=True, queued=True):
    """A journey call queued at 100 + i: answered after `wait` s, or gone after `gave_up` s."""
    r = CallRecord(call_id=f"c{i}", started_at=99.0 + i, journey=True)
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
