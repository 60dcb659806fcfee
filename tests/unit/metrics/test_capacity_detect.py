"""Capacity-search figures (steps, knee) and time to detect: pure."""
from harness.metrics.capacity import knee, step_misses
from harness.metrics.detect import time_to_detect
from harness.metrics.evaluate import evaluate
from tests.unit.metrics.test_metrics import call


def test_time_to_detect():
    assert time_to_detect([100.0, 130.0], [90.0, 112.5, 140.0]) == 12.5  # 90 s was a false alarm
    assert time_to_detect([100.0], [90.0]) is None
    assert time_to_detect([], [5.0]) is None


def test_knee_is_the_last_step_met_before_the_first_miss():
    steps = [{"rate": 2, "missed": []}, {"rate": 4, "missed": []},
             {"rate": 6, "missed": ["answer_rate"]}, {"rate": 8, "missed": []}]
    assert knee(steps) == 4
    assert knee(steps[:2]) == 4
    assert knee([{"rate": 2, "missed": ["pdd_p95"]}]) is None


def test_step_misses_judges_only_the_per_call_targets():
    ok = [call(t, media=False) for t in range(10)]
    busy = ok[:8] + [call(8, ok=False), call(9, ok=False)]
    sla = {"answer_rate": 0.9, "failover_time": 1.0, "pdd_p95": None}
    assert step_misses(ok, sla) == []
    assert step_misses(busy, sla) == ["answer_rate"]  # 80 %
    assert step_misses([], sla) == ["answer_rate"]


def test_capacity_run_is_judged_by_its_knee():
    recs = [call(t / 2, media=False) for t in range(20)] + \
           [call(10 + t / 4, ok=(t % 2 == 0), media=False) for t in range(20)]
    steps = [{"rate": 2, "started": 0, "ended": 10}, {"rate": 4, "started": 10, "ended": 15}]
    sla = {"answer_rate": 0.9, "capacity": 3.0, "steady_state_after": None}
    fig = evaluate(recs, [], sla, max_gap=1, alarm_window=10, run_start=0, run_end=15,
                   steady_state_after=None, capacity_steps=steps)
    assert fig["capacity"]["knee"] == 2
    assert [s["missed"] for s in fig["capacity"]["steps"]] == [[], ["answer_rate"]]
    names = {v["target"]: v for v in fig["verdicts"]}
    assert "answer_rate" not in names  # judged per step instead of over the whole run
    assert names["capacity"]["measured"] == 2 and not names["capacity"]["passed"]


def test_a_contact_centres_step_misses_at_the_service_level_knee():
    from tests.unit.metrics.test_journey import call as journey_call
    # every SIP call answered (the IVR); 6 of 10 reached an agent within 20 s, 4 after 40 s
    quick = [journey_call(i, wait=5) for i in range(6)]
    slow = [journey_call(i, wait=40) for i in range(6, 10)]
    for r in quick + slow:
        r.answered_at = r.started_at + 0.1
    sla = {"answer_rate": 0.9, "service_level": 0.8, "asa": None}
    assert step_misses(quick + slow, sla) == ["service_level"]  # 60 % within 20 s
    assert step_misses(quick + slow, sla, service_time=45.0) == []  # all within 45 s
    assert step_misses(quick, sla) == []
