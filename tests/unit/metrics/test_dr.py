"""RPO, RTO of writes and replication lag from hand-built probe records."""
import pytest

from harness.metrics.dr import Ack, LagSample, lag_summary, rpo, rto_writes

A, B = "10.0.0.1:5432", "10.0.0.2:5432"


def ticks(first: int, last: int, server: str, start: float = 100.0):
    """Writes acknowledged every 0.1 s."""
    return [Ack(s, start + s * 0.1 - 0.01, start + s * 0.1, server) for s in range(first, last + 1)]


def test_nothing_lost():
    acked = ticks(1, 50, A) + ticks(60, 70, B)
    figures = rpo(acked, {a.seq for a in acked})
    assert figures == {"acked": 61, "lost": 0, "seconds": 0.0, "lost_seqs": [],
                       "first_lost_at": None, "last_lost_at": None}


def test_writes_acknowledged_after_the_cut_are_lost_and_rpo_spans_them():
    acked = ticks(1, 50, A) + ticks(60, 70, B)
    surviving = set(range(1, 31)) | set(range(60, 71))  # 31..50 acknowledged but never replicated
    figures = rpo(acked, surviving)
    assert figures["lost"] == 20 and figures["lost_seqs"] == list(range(31, 51))
    # from the last write that survived (seq 30) to the last lost one (seq 50): 2.0 s
    assert figures["seconds"] == pytest.approx(2.0)


def test_rto_is_the_first_write_on_another_server():
    acked = ticks(1, 50, A) + ticks(80, 90, B)
    rto = rto_writes(acked, fault_at=105.05)
    assert rto["old_primary"] == A and rto["new_primary"] == B
    assert rto["seconds"] == pytest.approx(108.0 - 105.05)
    assert rto_writes(ticks(1, 50, A), fault_at=105.05)["seconds"] is None  # never failed over


def test_lag_summary_ignores_unknown_samples():
    s = lag_summary([LagSample(1, 0.1), LagSample(2, None), LagSample(3, 2.5)])
    assert s["samples"] == 2 and s["max"] == 2.5 and s["p99"] == pytest.approx(2.476)


def test_cdr_figures_count_the_missing_and_the_verdict_judges_them():
    from harness.metrics.dr import probe_figures
    from harness.metrics.sla import TARGETS, Figures
    records = {"probe": "db", "kind": "postgres", "acks": [], "lag": [], "surviving": [],
               "cdr": {"checked": 5, "missing": ["c@x", "d@x"]}}
    cdrs_lost = TARGETS["cdrs_lost"].measure
    fig = probe_figures(records, None)
    assert fig["cdr"] == {"checked": 5, "lost": 2, "missing": ["c@x", "d@x"]}
    measured, detail, _ = vars(cdrs_lost(Figures(dr=[fig]))).values()
    assert measured == 2.0 and detail == "2 of 5 answered calls without a CDR"
    no_check = probe_figures({**records, "cdr": None}, None)
    assert no_check["cdr"] is None
    assert cdrs_lost(Figures(dr=[no_check])).value is None  # unknown, never "0 lost"


def test_replication_lag_is_the_age_of_the_oldest_acknowledged_write_the_standby_lacks():
    from harness.metrics.dr import replication_lag
    # seq i is sent at (i-1)/10 and acknowledged 10 ms later. At 0.5 the standby has seq 5
    # and seq 6 is not acknowledged until 0.51: nothing missing, lag 0. The link is cut at
    # 1.0: the standby stays at seq 10, so at 3.0 the oldest missing write is seq 11,
    # acknowledged at 1.01: lag 1.99 s
    acked = [Ack(i, (i - 1) / 10, (i - 1) / 10 + 0.01, "a:5432") for i in range(1, 31)]
    samples = [LagSample(0.5, 0.2, 5), LagSample(3.0, 2.0, 10),
               LagSample(3.5, None, None),      # standby unreadable
               LagSample(4.0, 3.0, 30)]         # caught up: the primary died, nothing missing
    lags = replication_lag(acked, samples)
    assert lags[0].lag == 0.0
    assert lags[1].lag == pytest.approx(3.0 - 1.01)
    assert lags[2].lag is None and lags[3].lag == 0.0


def test_two_servers_taking_writes_after_the_rollback_fail_the_primaries_target():
    from harness.metrics.dr import probe_figures
    from harness.metrics.sla import TARGETS, Figures, verdicts
    records = {"probe": "db", "kind": "postgres", "acks": [], "lag": [], "surviving": []}
    split = probe_figures({**records, "primaries": ["10.0.0.1:5432", "10.0.0.2:5432"]}, None)
    measured = TARGETS["primaries"].measure(Figures(dr=[split]))
    assert (measured.value, measured.detail) == (2.0, "db: 10.0.0.1:5432, 10.0.0.2:5432")
    (v,) = verdicts({"primaries": TARGETS["primaries"].default}, Figures(dr=[split]))
    assert not v.passed
    one = Figures(dr=[probe_figures({**records, "primaries": ["10.0.0.2:5432"]}, None)])
    assert verdicts({"primaries": 1.0}, one)[0].passed
    # servers never asked (the drill stopped before the check): the target is not measured
    # and fails, rather than vanishing from the verdicts
    unchecked = Figures(dr=[probe_figures({**records, "primaries": None}, None)])
    (v,) = verdicts({"primaries": 1.0}, unchecked)
    assert not v.passed and v.measured is None and "not checked" in v.detail
