"""Failover figures of one fault: outage, recovery (failover time), traffic shift, continuity.

Pure functions over call records; each states the definition it implements
(README "What the numbers mean"). They are built to survive the failure
shapes that fooled simpler rules:

- a blackout whose INVITEs are retransmitted and answered after it: no
  attempt *fails*, yet nobody was answered for L seconds. The outage is read
  from answer timestamps, so it shows.
- a half outage (hash dispatch: failed and answered calls interleave): "K
  answered in a row" happens by luck. Recovery is judged on the share of
  good calls over a sliding window instead.
- an SBC that never marks a dead node down: new calls keep being touched for
  the whole fault. Traffic shift then reads "never", not "18.9 s".
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from harness.metrics.calls import percentile
from harness.metrics.records import CallRecord, FaultWindow


@dataclass(frozen=True)
class RecoveryRule:
    """How recovery is judged: the share of good calls over a sliding window of
    `window` seconds (stretched to hold at least `min_attempts`) must be back to
    the pre-fault share minus `tolerance`, and stay there."""

    window: float = 2.0
    min_attempts: int = 10
    tolerance: float = 0.10


def pdd_good_default(pre_fault: list[CallRecord]) -> float:
    """max(1 s, 3 x the pre-fault PDD p95): slower than that, a caller notices."""
    p95 = percentile([r.pdd for r in pre_fault if r.pdd is not None], 95)
    return max(1.0, 3 * p95) if p95 is not None else 1.0


def is_good(r: CallRecord, pdd_good: float) -> bool:
    """A good call: answered, with a post-dial delay of at most `pdd_good`."""
    return r.answered and r.pdd is not None and r.pdd <= pdd_good


def good_share(records: list[CallRecord], pdd_good: float) -> float | None:
    return None if not records else sum(is_good(r, pdd_good) for r in records) / len(records)


# -- outage -------------------------------------------------------------------
@dataclass
class Outage:
    """The longest time, overlapping the fault, in which the hotline answered no call.

    Read from answer timestamps: the hotline still worked when the last call
    before the gap was answered, and worked again when the first call after it
    was placed, about one normal set-up time (`setup`: INVITE to 200 before the
    fault) before its answer. Each edge is then placed half an attempt spacing
    inside the gap, since the break fell somewhere between two attempts;
    `resolution` is that half spacing at both edges (about 1/CPS in all). `end`
    is None when no call was answered again before the records end.
    """

    start: float | None
    end: float | None
    length: float
    resolution: float
    last_answered: str | None = None   # Call-IDs of the calls that bound the outage (evidence)
    first_answered: str | None = None

    @property
    def over(self) -> bool:
        return self.end is not None


def _spacing_after(starts: list[float], t: float) -> float:
    """Time from an attempt started at `t` to the next one (0 if none); `starts` sorted."""
    i = bisect_right(starts, t)
    return starts[i] - t if i < len(starts) else 0.0


def _spacing_before(starts: list[float], t: float) -> float:
    i = bisect_left(starts, t)
    return t - starts[i - 1] if i > 0 else 0.0


def setup_time(records: list[CallRecord]) -> float:
    """Median INVITE-to-200 time of answered calls (0 with none): the normal set-up time."""
    return percentile([r.answered_at - r.started_at for r in records if r.answered_at], 50) or 0.0


def outage(records: list[CallRecord], fault: FaultWindow, setup: float = 0.0) -> Outage:
    """Outage of one fault (see `Outage`); length 0 when answers never stopped."""
    answered = sorted((r for r in records if r.answered_at is not None), key=lambda r: r.answered_at)
    starts = sorted(r.started_at for r in records)
    fs = fault.started_at
    fe = fault.ended_at if fault.ended_at is not None else float("inf")
    best: tuple[float, CallRecord | None, CallRecord | None] | None = None
    # gaps between consecutive answers (and before the first / after the last one)
    bounds = [None, *answered, None]
    for before, after in zip(bounds, bounds[1:]):
        a = before.answered_at if before else min(fs, starts[0] if starts else fs)
        # after the last answer: silent up to the last attempt placed (none since: no gap;
        # calls still in their hold when the records end prove nothing)
        b = after.answered_at if after else max(a, starts[-1] if starts else a)
        if b <= fs or a >= fe:
            continue  # does not overlap the fault
        if best is None or b - a > best[0]:
            best = (b - a, before, after)
    if best is None:
        return Outage(None, None, 0.0, 0.0)
    _, before, after = best
    lead = _spacing_after(starts, before.started_at) / 2 if before else 0.0
    trail = _spacing_before(starts, after.started_at) / 2 if after else 0.0
    start = (before.answered_at if before else fs) + lead
    end = max(start, after.answered_at - setup - trail) if after else None
    length = max(0.0, (end if end is not None else max(starts[-1], start)) - start)
    return Outage(start, end, length, lead + trail,
                  before.call_id if before else None, after.call_id if after else None)


# -- recovery (failover time) -------------------------------------------------
@dataclass
class Recovery:
    """From the fault's start until the share of good calls over a sliding window
    is back to the pre-fault level (minus a tolerance) and stays there.

    `at`: when the good call that begins the recovered stretch was answered (a
    window begins with a good call; from it on every window is back at the
    level). Its answer, not its INVITE, marks the time: a call placed just
    before a blackout ended is answered only after it. `failover_time` = at -
    fault start (0 when the very first attempt of the fault already
    qualifies); None: never recovered within the records. `bad_attempts`:
    attempts between the fault's start and `at` that were not good calls.
    """

    at: float | None
    failover_time: float | None
    level: float
    bad_attempts: int
    first_good: str | None = None  # Call-ID of the call that starts the recovered stretch


def _window_ends(attempts: list[CallRecord], rule: RecoveryRule) -> list[int]:
    """For each attempt i, the index one past the last attempt of the window starting
    at it: `rule.window` seconds, stretched to hold `rule.min_attempts`."""
    ends, j = [], 0
    n = len(attempts)
    for i, r in enumerate(attempts):
        j = max(j, i)
        while j < n and attempts[j].started_at < r.started_at + rule.window:
            j += 1
        ends.append(max(j, min(n, i + rule.min_attempts)))
    return ends


def recovery(records: list[CallRecord], fault: FaultWindow, baseline: float, pdd_good: float,
             rule: RecoveryRule = RecoveryRule(), horizon: float | None = None) -> Recovery:
    """Recovery of one fault (see `Recovery`).

    `baseline`: the pre-fault share of good calls. `horizon`: judge only
    attempts started before it (the next fault's start), so one fault's
    recovery is never held up by the next fault.
    """
    level = max(0.0, baseline - rule.tolerance)
    attempts = sorted((r for r in records if r.started_at >= fault.started_at
                       and (horizon is None or r.started_at < horizon)), key=lambda r: r.started_at)
    if not attempts:
        return Recovery(None, None, level, 0)
    good = [is_good(r, pdd_good) for r in attempts]
    n = len(attempts)
    ends = _window_ends(attempts, rule)
    prefix = [0]
    for g in good:
        prefix.append(prefix[-1] + g)

    def passes(i: int) -> bool:
        size = ends[i] - i
        return (prefix[ends[i]] - prefix[i]) / size >= level - 1e-12

    # a window is judged only when it holds min_attempts (the tail is covered by earlier ones)
    judged = [ends[i] - i >= rule.min_attempts or n < rule.min_attempts and i == 0 for i in range(n)]
    all_pass_from = [True] * (n + 1)
    for i in range(n - 1, -1, -1):
        all_pass_from[i] = all_pass_from[i + 1] and (not judged[i] or passes(i))
    for i in range(n):
        if good[i] and all_pass_from[i]:
            at = attempts[i].answered_at
            ft = 0.0 if i == 0 else max(0.0, at - fault.started_at)
            return Recovery(at, ft, level, i - prefix[i], attempts[i].call_id)
    return Recovery(None, None, level, n - prefix[n])


# -- traffic shift ------------------------------------------------------------
@dataclass
class Shift:
    """From the fault's start to the last new call the fault still touched (failed,
    not a good call, or answered by a faulted node).

    `never`: that call came so close to the fault's end that no clean stretch
    (`window` seconds holding at least `CLEAN_ATTEMPTS` untouched attempts)
    followed it before the fault ended: traffic never shifted away while the
    fault lasted. The stretch is judged by time, so short faults at low rates
    can still show a shift; with hash dispatch at a low rate a lucky clean
    stretch can end a shift early (each start has a chance of 2^-(rate x window)).
    """

    seconds: float | None
    never: bool
    touched: int
    last_touched: str | None = None

    @property
    def value(self) -> float | None:
        return None if self.never else self.seconds


CLEAN_ATTEMPTS = 3  # untouched attempts a clean stretch must hold, besides its length


def traffic_shift(records: list[CallRecord], fault: FaultWindow, pdd_good: float,
                  rule: RecoveryRule = RecoveryRule()) -> Shift:
    end = fault.ended_at if fault.ended_at is not None else \
        max((r.started_at for r in records), default=fault.started_at) + 1e-6
    during = sorted((r for r in records if fault.started_at <= r.started_at < end),
                    key=lambda r: r.started_at)
    # a call the faulted node answers while its undo brings it back is not one the fault touched
    back_from = fault.undo_started if fault.undo_started is not None else end
    touched = [r for r in during if not is_good(r, pdd_good)
               or (r.node in fault.nodes and r.started_at < back_from)]
    if not touched:
        return Shift(0.0, False, 0)
    last = touched[-1]
    clean = [r for r in during if r.started_at > last.started_at]
    never = len(clean) < CLEAN_ATTEMPTS or end - last.started_at < rule.window
    return Shift(last.started_at - fault.started_at, never, len(touched), last.call_id)


# -- continuity -----------------------------------------------------------------
def continuity(records: list[CallRecord], fault_start: float, max_gap: float,
               exclude_nodes: tuple[str, ...] = ()) -> tuple[int, int]:
    """(kept, eligible) calls across a fault.

    Eligible: answered before the fault started and meant to last past it.
    Kept: ended normally (our BYE got 200) with no media gap above `max_gap`.
    `exclude_nodes` leaves out calls on the faulted nodes (bystander continuity).
    """
    eligible = [r for r in records
                if r.answered_at is not None and r.answered_at < fault_start
                and r.planned_end is not None and r.planned_end > fault_start
                and r.node not in exclude_nodes]
    kept = [r for r in eligible
            if r.outcome == "completed" and (not r.media or r.rtp_max_gap <= max_gap)]
    return len(kept), len(eligible)


def share(kept_eligible: tuple[int, int]) -> float | None:
    kept, eligible = kept_eligible
    return None if eligible == 0 else kept / eligible


def calls_back(records: list[CallRecord], fault: FaultWindow,
               outage_ended: float | None = None) -> dict:
    """RTO of calls: from the fault's start to the first answer, at or after it, of a call
    placed at or after it and answered by a node the fault did not take out (for a site-level
    fault: a node of the surviving site). A call placed before the fault and answered after it
    went through the old path, so it proves nothing about the survivor. When the fault
    silenced the hotline (`outage_ended`: the answer that ended its outage), calls are back
    from that answer on: a call that slipped through in the moment the fault took to bite is
    not the service coming back. None: no such call."""
    hit = set(fault.nodes)
    since = max(fault.started_at, outage_ended or fault.started_at)
    first = min((r for r in records if r.answered and r.started_at >= fault.started_at
                 and r.answered_at >= since and r.node not in hit),
                key=lambda r: r.answered_at, default=None)
    if first is None:
        return {"seconds": None, "call_id": None, "node": None}
    return {"seconds": first.answered_at - fault.started_at, "call_id": first.call_id,
            "node": first.node}
