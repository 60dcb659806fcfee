"""RFC 2782's order of SRV targets: priorities first, weights within one, drawn again each
time; counted over many draws against the weights' shares."""
import random
from collections import Counter

from harness.sip.rfc3263 import Resolved, Srv, srv_order


def test_lower_priority_always_first():
    recs = [Srv(20, 100, 5060, "b"), Srv(10, 0, 5060, "a"), Srv(30, 5, 5060, "c")]
    assert [r.target for r in srv_order(recs, random.Random(1))] == ["a", "b", "c"]


def test_weights_share_the_first_place_as_their_proportion():
    recs = [Srv(10, 60, 5060, "heavy"), Srv(10, 30, 5060, "light"), Srv(10, 10, 5060, "feather")]
    rng = random.Random(7)
    first = Counter(srv_order(recs, rng)[0].target for _ in range(20000))
    for name, share in (("heavy", 0.6), ("light", 0.3), ("feather", 0.1)):
        assert abs(first[name] / 20000 - share) < 0.015, first


def test_weight_zero_comes_last_of_its_priority_unless_alone():
    recs = [Srv(10, 0, 5060, "zero"), Srv(10, 5, 5060, "five"), Srv(20, 0, 5060, "next")]
    for seed in range(50):
        assert [r.target for r in srv_order(recs, random.Random(seed))] == ["five", "zero", "next"]
    only = [Srv(10, 0, 5060, "x"), Srv(10, 0, 5060, "y")]
    assert sorted(r.target for r in srv_order(only, random.Random(3))) == ["x", "y"]


def test_a_resolution_is_fresh_until_its_shortest_ttl():
    r = Resolved([], expires_at=100.0)
    assert r.fresh(99.9) and not r.fresh(100.0)
