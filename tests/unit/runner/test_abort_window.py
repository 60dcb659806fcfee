"""The answer-rate abort rule reads only the end of a run's records: the same rate as over
every record, at a cost that does not grow with the run."""
import random

from harness.metrics.calls import answer_rate
from harness.metrics.records import CallRecord
from harness.runner.abort import ended_since


def test_the_window_read_from_the_end_gives_the_rate_over_every_record():
    rng = random.Random(5)
    recs = []
    for i in range(5000):
        start = i * 0.01
        answered = rng.random() < 0.7
        end = start + (rng.uniform(0.5, 3) if answered else rng.uniform(0, 1))
        recs.append(CallRecord(call_id=str(i), started_at=start, ended_at=end,
                               answered_at=start + 0.02 if answered else None))
    arrival = {id(r): r.ended_at + rng.uniform(0, 1) for r in recs}  # published a little late
    recs.sort(key=lambda r: arrival[id(r)])
    for now in (15.0, 30.0, 49.0):
        so_far = [r for r in recs if arrival[id(r)] <= now]  # the run's list at this moment
        window = ended_since(so_far, now - 10)
        assert answer_rate(window, now - 10, now) == answer_rate(so_far, now - 10, now)
        if now > 20:  # beyond the window and its slack: the early part of the run is not read
            assert len(window) < len(so_far) * 0.6
