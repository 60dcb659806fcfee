"""Registration figures on hand-worked attempts: RRD, IRA, agents registered each second,
and how long after a fault the agents were back."""
import pytest

from harness.metrics.records import CallRecord
from harness.metrics.registration import Attempt, agent_calls, back_after, ira, registered_each_second, rrd


def test_rrd_and_ira_count_registrations_as_rfc_6076_does():
    a = [Attempt("a1", 10.0, 10.05, 200, 60), Attempt("a2", 10.0, 10.25, 200, 60),
         Attempt("a3", 10.0, 14.0, 0), Attempt("a4", 10.0, 10.1, 503, retry_after=5.0),
         Attempt("a5", 10.0, 10.1, 403), Attempt("a1", 70.0, 70.01, 200, 0)]  # an un-REGISTER
    r = rrd(a)
    assert r["n"] == 2 and r["max"] == pytest.approx(0.25) and r["p50"] == pytest.approx(0.15)
    # 5 registrations (the un-REGISTER is not one); the timeout and the 503 were ineffective,
    # the 403 was an answer (refused credentials), not an ineffective attempt
    assert ira(a) == pytest.approx(2 / 5)
    assert ira([]) is None


def test_registered_each_second_follows_expiry_refresh_and_loss():
    a = [Attempt("a1", 0.0, 0.5, 200, 10),     # registered 0.5 .. 10.5
         Attempt("a1", 8.0, 8.2, 200, 10),     # refreshed: on to 18.2
         Attempt("a2", 0.0, 1.2, 200, 4),      # 1.2 .. 5.2, never refreshed: lapses
         Attempt("a3", 0.0, 0.1, 200, 30),     # 0.1 .. but told it is gone at 6.0
         Attempt("a3", 6.0, 6.0, 404)]
    got = registered_each_second(a, 0.0, 20.0)
    assert got[0] == 0                    # nobody at 0.0 exactly
    assert got[1] == 2                    # a1 and a3 (a2 from 1.2)
    assert got[2:6] == [3, 3, 3, 3]       # all three, a2 until 5.2
    assert got[6] == 1                    # a2 lapsed at 5.2, a3 gone at 6.0: a1 alone
    assert got[7] == 1 and got[18] == 1 and got[19] == 0  # a1 alone until 18.2


def test_back_after_a_fault_in_shares_of_all_agents():
    agents = [f"a{i}" for i in range(10)]
    a = [Attempt(f"a{i}", 100.0 + i, 100.0 + i + 0.1, 200, 60) for i in range(9)]  # a9 never
    a += [Attempt("a0", 99.0, 99.1, 200, 60)]  # before the fault: does not count
    b = back_after(a, 100.0, agents)
    assert b["p50"] == pytest.approx(4.1)   # the 5th of 10 back
    assert b["p90"] == pytest.approx(8.1)   # the 9th
    assert b["p99"] is None                 # the 10th never came back
    assert b["never"] == ["a9"] and b["agents"] == 10


def _call(cid, status, node="", callee="a1"):
    return CallRecord(call_id=cid, status=status, node=node, callee=callee,
                      answered_at=1.0 if status == 200 else None)


def test_calls_to_agents_are_told_against_the_agents_own_record():
    recs = [_call("c1", 200, "a1"), _call("c2", 200, "a2", "a2"), _call("c3", 404),
            _call("c4", 480), _call("c5", 486), _call("c6", 200, "a1")]
    # c6: answered by a1 on the caller's side, by a2 on the agents' (told differently);
    # c7: an agent answered a call its caller no longer had (one side only)
    answers = {"c1": "a1", "c2": "a2", "c6": "a2", "c7": "a1"}
    got = agent_calls(recs, answers, {"a1", "a2"})
    assert got == {"answered": 3, "delivered": 4, "no_agent": 2, "busy": 1,
                   "mismatched": ["c6", "c7"]}


def test_calls_to_agents_agree_when_both_sides_tell_the_same():
    recs = [_call("c1", 200, "a1"), _call("c2", 200, "pbx-1")]  # pbx-1 is no agent
    assert agent_calls(recs, {"c1": "a1"}, {"a1"})["mismatched"] == []
