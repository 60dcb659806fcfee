"""Erlang B, C and A against published tables, hand-worked cases and their own limits."""
import math

import pytest

from harness.metrics.erlang import (erlang_a_queue, erlang_b, erlang_c, erlang_c_queue,
                                    service_level)


@pytest.mark.parametrize("servers, load, table", [(10, 5.0, 0.0184), (1, 1.0, 0.5),
                                                  (5, 2.0, 0.0367), (20, 15.0, 0.0456)])
def test_erlang_b_matches_the_published_table(servers, load, table):
    # Erlang B tables (blocking at N lines, A erlangs), as printed to three figures
    assert erlang_b(servers, load) == pytest.approx(table, abs=0.00051)


def test_erlang_c_by_hand_and_for_one_agent():
    # N = 2, A = 1: (A^2/2! · 2/(2-1)) / (1 + A + 1) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/1: an arrival waits with probability ρ; the mean wait is ρ / (μ - λ)
    q = erlang_c_queue(1, 0.5, 1.0)
    assert q.p_wait == pytest.approx(0.5) and q.mean_wait == pytest.approx(1.0)
    assert erlang_c(3, 3.0) == 1.0  # overloaded: everyone waits
    with pytest.raises(ValueError):
        erlang_c_queue(3, 1.0, 3.0)


def test_the_worked_example_of_a_contact_centre():
    # 360 calls a half hour, 4 minutes each, 55 agents, service level at 15 s: 48 erlangs
    # on 55 agents; 23.9 % wait, ASA 8.2 s, 84.6 % answered within 15 s
    q = erlang_c_queue(55, 360 / 1800, 240)
    assert q.p_wait == pytest.approx(0.2387, abs=0.0005)
    assert q.mean_wait == pytest.approx(8.18, abs=0.01)
    assert service_level(55, 360 / 1800, 240, 15) == pytest.approx(0.846, abs=0.001)
    assert service_level(55, 360 / 1800, 240, 0) == pytest.approx(1 - q.p_wait)


def test_erlang_a_with_endless_patience_is_erlang_c():
    c, a = erlang_c_queue(55, 0.2, 240), erlang_a_queue(55, 0.2, 240, patience=1e9)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.mean_wait == pytest.approx(c.mean_wait, rel=1e-5) and a.p_abandon < 1e-6


def test_erlang_a_with_patience_equal_to_handle_time_is_a_poisson_count():
    # θ = μ: every caller in the system leaves at rate μ, waiting or served, so the number in
    # the system is Poisson(A) (M/M/∞): waiting = P(X >= N), queue = E[(X - N)+]
    servers, rate, handle = 10, 1.0, 10.0
    load = rate * handle
    pmf = [math.exp(-load)]
    for k in range(1, 120):
        pmf.append(pmf[-1] * load / k)
    q = erlang_a_queue(servers, rate, handle, patience=handle)
    assert q.p_wait == pytest.approx(sum(pmf[servers:]), rel=1e-9)
    queue = sum((k - servers) * p for k, p in enumerate(pmf) if k > servers)
    assert q.mean_queue == pytest.approx(queue, rel=1e-9)
    assert q.p_abandon == pytest.approx(queue / handle / rate, rel=1e-9)


def test_erlang_a_stays_finite_above_capacity_and_impatience_sheds_the_excess():
    # 2 calls/s of 10 s each on 10 agents: twice what they can take. Without patience the
    # queue never empties; with a 30 s mean patience about half the callers give up
    q = erlang_a_queue(10, 2.0, 10.0, patience=30.0)
    assert 0.45 < q.p_abandon < 0.55 and q.p_wait > 0.99
    # more patience, fewer abandon but longer waits
    longer = erlang_a_queue(10, 2.0, 10.0, patience=120.0)
    assert longer.p_abandon < q.p_abandon and longer.mean_wait > q.mean_wait
