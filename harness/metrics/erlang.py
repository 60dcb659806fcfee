"""Queueing figures a contact centre is planned with: Erlang B, Erlang C and Erlang A. Pure.

They are the ground truth a queue drill is judged against: with N agents, Poisson arrivals
(rate λ), exponential handle times (mean h, rate μ = 1/h) and, for Erlang A, exponential
patience (mean p, rate θ = 1/p), queueing theory says how many callers wait, how long, and
how many give up. Offered load A = λh, in erlangs.

- Erlang B (M/M/N/N): the share of callers blocked when there is no queue. By the stable
  recursion B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1)).
- Erlang C (M/M/N): the probability a caller waits, C = N·B / (N - A(1 - B)) for A < N;
  the mean wait over all callers (ASA) C / (Nμ - λ); and the service level, the share
  answered within t, 1 - C·e^(-(Nμ - λ)t).
- Erlang A (M/M/N+M): callers abandon after an exponential patience. The number in the
  system is a birth-death chain (births λ, deaths min(n, N)μ + max(n - N, 0)θ), solved
  here numerically, in logarithms, to where its probabilities vanish: the probability of
  waiting (an arrival finds every agent busy, PASTA), the mean queue E[Q], the mean wait of
  all callers E[Q]/λ (Little), and the abandonment probability θ·E[Q]/λ (callers leave
  the queue at rate θ each). It is stable at any load, since impatience empties the queue.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def erlang_b(servers: int, load: float) -> float:
    """The blocking probability of `servers` lines offered `load` erlangs (no queue)."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must be >= 0")
    b = 1.0
    for n in range(1, servers + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """The probability a caller waits; 1.0 when `load` >= `servers` (the queue never empties)."""
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1 - b))


@dataclass(frozen=True)
class Queue:
    """What a model says of one queue, per caller."""

    p_wait: float       # an arrival finds every agent busy
    mean_wait: float    # over every caller, those served at once included (ASA), seconds
    p_abandon: float    # the caller gives up before an agent answers (0 in Erlang C)
    mean_queue: float   # callers waiting, on average


def erlang_c_queue(servers: int, arrival_rate: float, handle_time: float) -> Queue:
    """M/M/N: Erlang C's figures for λ = `arrival_rate` per second, mean handle `handle_time` s."""
    load = arrival_rate * handle_time
    if load >= servers:
        raise ValueError(f"{load:g} erlangs on {servers} agents: the queue grows without end")
    c = erlang_c(servers, load)
    wait = c / (servers / handle_time - arrival_rate)
    return Queue(c, wait, 0.0, arrival_rate * wait)


def service_level(servers: int, arrival_rate: float, handle_time: float, within: float) -> float:
    """Erlang C's share of callers answered within `within` seconds (waiting none included)."""
    c = erlang_c(servers, arrival_rate * handle_time)
    return 1 - c * math.exp(-(servers / handle_time - arrival_rate) * within)


def erlang_a_queue(servers: int, arrival_rate: float, handle_time: float,
                   patience: float) -> Queue:
    """M/M/N+M: Erlang A's figures, with callers' mean patience `patience` seconds."""
    if servers < 1 or arrival_rate <= 0 or handle_time <= 0 or patience <= 0:
        raise ValueError("servers >= 1 and positive rates and times are needed")
    mu, theta = 1 / handle_time, 1 / patience
    logs, log_p, n = [0.0], 0.0, 0
    while True:  # log π_n, unnormalised, until far past the mode and negligible
        n += 1
        log_p += math.log(arrival_rate / (min(n, servers) * mu + max(n - servers, 0) * theta))
        logs.append(log_p)
        if n > servers and log_p < max(logs) - 40 and log_p < logs[-2]:
            break
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    p_wait = sum(weights[servers:]) / total
    queue = sum((k - servers) * w for k, w in enumerate(weights) if k > servers) / total
    return Queue(p_wait, queue / arrival_rate, theta * queue / arrival_rate, queue)


T_975_DF9, T_9995_DF9 = 2.262, 4.781  # Student's t, 9 degrees of freedom: 95 % and 99.9 %


def batch_interval(values: list[float], batches: int = 10, t: float = T_975_DF9) -> tuple[float, float]:
    """(mean, half-width of its interval) by batch means: `values` in arrival order cut into
    `batches` runs, whose means are close to independent where consecutive callers' waits are
    not. `t`: Student's t for batches - 1 degrees of freedom (default: a 95 % interval)."""
    size = len(values) // batches
    if size < 2:
        raise ValueError(f"{len(values)} values make no {batches} batches")
    means = [statistics.fmean(values[i * size:(i + 1) * size]) for i in range(batches)]
    return statistics.fmean(values), t * statistics.stdev(means) / batches ** 0.5
