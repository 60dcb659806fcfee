"""Toxic decisions of the UDP relay, with a seeded RNG: pure and repeatable."""
import pytest
from harness.lab.toxics import Bucket, Pipeline, Toxic


def run(pipeline, n=20000, stream="upstream", size=200, dt=0.0):
    return [pipeline.decide(stream, size, i * dt).delays for i in range(n)]


def test_no_toxic_passes_everything_at_once():
    assert run(Pipeline(1), 10) == [[0.0]] * 10


def test_loss_ratio_and_stream_selection():
    p = Pipeline(1)
    p.add(Toxic(name="l", type="loss", ratio=0.3, stream="upstream"))
    kept = sum(bool(d) for d in run(p))
    assert kept / 20000 == pytest.approx(0.7, abs=0.02)
    assert all(run(p, 100, stream="downstream"))  # other direction untouched


def test_latency_with_jitter_stays_in_band():
    p = Pipeline(2)
    p.add(Toxic(name="d", type="latency", latency_ms=100, jitter_ms=20))
    delays = [d[0] for d in run(p, 5000)]
    assert min(delays) >= 0.080 and max(delays) <= 0.120
    assert sum(delays) / len(delays) == pytest.approx(0.100, abs=0.002)


def test_blackhole_duplicate_reorder_toxicity():
    p = Pipeline(3)
    p.add(Toxic(name="dup", type="duplicate", ratio=1.0))
    assert run(p, 3) == [[0.0, 0.0]] * 3
    p.add(Toxic(name="bh", type="blackhole", toxicity=0.5))
    dropped = sum(not d for d in run(p, 10000))
    assert dropped / 10000 == pytest.approx(0.5, abs=0.03)
    assert p.remove("bh") and not p.remove("bh")
    p.remove("dup")
    p.add(Toxic(name="r", type="reorder", ratio=1.0, reorder_gap_ms=40))
    assert run(p, 1) == [[0.04]]
    with pytest.raises(ValueError):
        p.add(Toxic(name="r", type="loss", ratio=0.1))


def test_rate_cap_is_a_token_bucket():
    b = Bucket(rate_bytes=1000, burst=500, tokens=500, last=0.0)
    assert b.allow(500, 0.0) and not b.allow(1, 0.0)
    assert b.allow(100, 0.1) and not b.allow(100, 0.1)
    p = Pipeline(4)
    p.add(Toxic(name="cap", type="rate", rate_kbps=64, burst_bytes=400))  # 8000 bytes/s
    passed = sum(bool(d) for d in run(p, 1000, size=200, dt=0.01))  # 20000 bytes/s offered, 10 s
    assert passed * 200 == pytest.approx(8000 * 10 + 400, rel=0.03)


def test_bad_toxic_is_refused():
    with pytest.raises(ValueError):
        Toxic(name="x", type="netem")
