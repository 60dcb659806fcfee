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
    raw: float = 0.0                   # answer to answer, before the edges are placed

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


def answer_gaps(records: list[CallRecord], fault: FaultWindow,
                setup: float = 0.0) -> list[Outage]:
    """Every time, overlapping the fault, between two consecutive answers (and before the
    first / after the last one), each placed as `Outage` says; in time order."""
    answered = sorted((r for r in records if r.answered_at is not None), key=lambda r: r.answered_at)
    starts = sorted(r.started_at for r in records)
    fs = fault.started_at
    fe = fault.ended_at if fault.ended_at is not None else float("inf")
    gaps = []
    bounds = [None, *answered, None]
    for before, after in zip(bounds, bounds[1:]):
        a = before.answered_at if before else min(fs, starts[0] if starts else fs)
        # after the last answer: silent up to the last attempt placed (none since: no gap;
        # calls still in their hold when the records end prove nothing)
        b = after.answered_at if after else max(a, starts[-1] if starts else a)
        if b <= fs or a >= fe:
            continue  # does not overlap the fault
        lead = _spacing_after(starts, before.started_at) / 2 if before else 0.0
        trail = _spacing_before(starts, after.started_at) / 2 if after else 0.0
        start = (before.answered_at if before else fs) + lead
        end = max(start, after.answered_at - setup - trail) if after else None
        length = max(0.0, (end if end is not None else max(starts[-1], start)) - start)
        gaps.append(Outage(start, end, length, lead + trail, before.call_id if before else None,
                           after.call_id if after else None, raw=b - a))
    return gaps


def outage(records: list[CallRecord], fault: FaultWindow, setup: float = 0.0) -> Outage:
    """Outage of one fault (see `Outage`); length 0 when answers never stopped."""
    return longest(answer_gaps(records, fault, setup))


def longest(gaps: list[Outage]) -> Outage:
    """The longest of `gaps` answer to answer (the first of equals); none: an empty outage."""
    return max(gaps, key=lambda g: g.raw, default=Outage(None, None, 0.0, 0.0))


DOMINANCE = 2.0  # the outage is where the fault bit only if this many times every other gap


def where_it_bit(gaps: list[Outage]) -> Outage | None:
    """The silence the fault caused, if one stands out: the longest gap, when it is longer
    than its own resolution (the spacing of attempts) and at least `DOMINANCE` times every
    other gap of the fault. None when the fault silenced nothing, or only in a rhythm of
    short gaps of a like length (a flapping health check, a hash-dispatched half outage):
    then no one gap is "the" outage, and calls back is read from the fault's start."""
    top = longest(gaps)
    if top.start is None or top.length <= top.resolution:
        return None
    rest = [g.raw for g in gaps if g is not top]
    return top if all(top.raw >= DOMINANCE * r for r in rest) else None


def interruptions(gaps: list[Outage], quiet: float) -> list[Outage]:
    """The gaps of a fault longer than `quiet` (twice the longest pre-fault answer gap:
    silences the drill's own rhythm of answers does not explain)."""
    return [g for g in gaps if g.raw > quiet]


def quiet_gap(pre_fault: list[CallRecord]) -> float | None:
    """Twice the longest gap between consecutive answers before the fault (None: under 2)."""
    t = sorted(r.answered_at for r in pre_fault if r.answered_at is not None)
    return 2 * max(b - a for a, b in zip(t, t[1:])) if len(t) > 1 else None


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
SLOW_MARGIN = 0.05  # s: the least a set-up must exceed the pre-fault p99 by to be an outlier


def slow_limit(pre_fault: list[CallRecord]) -> float | None:
    """A set-up slower than this is an outlier against the drill's own pre-fault ones:
    max(p99 + 50 ms, 2 x p99 - p50), i.e. one more pre-fault spread (p50 to p99) above
    the p99, and never closer to it than 50 ms. Why not a fixed 1 s (`pdd_good`): a 1 s
    failover timer lands its retries at 0.95-1.05 s, on both sides of it. Why not 3 x p99:
    it scales with the set-up time itself, so a hotline with a 0.4 s p99 would hide every
    retry of a 0.5 s or 1 s timer under 1.2 s; the spread grows only with the jitter.
    None: no answered pre-fault call to judge by (then `pdd_good` is used)."""
    pdds = [r.pdd for r in pre_fault if r.pdd is not None]
    if not pdds:
        return None
    p50, p99 = percentile(pdds, 50), percentile(pdds, 99)
    return max(p99 + SLOW_MARGIN, 2 * p99 - p50)


def slow_share(pre_fault: list[CallRecord], limit: float | None) -> float:
    """Share of pre-fault attempts the limit calls slow or failed: the touched calls the
    hotline makes without any fault."""
    if limit is None or not pre_fault:
        return 0.0
    return sum(r.pdd is None or r.pdd > limit for r in pre_fault) / len(pre_fault)


@dataclass
class Shift:
    """From the fault's start to the last new call the fault still touched.

    Touched: failed, set up slower than `slow_limit` (an outlier against the
    pre-fault set-ups), or answered by a faulted node before its undo. Strays
    are left out while there are few: slow-only calls with no other touched
    call within the rule's window, as many as the hotline's pre-fault slow
    share explains (twice its expectation, plus 2); more than that, and they
    count (a health check that flaps touches a call every few seconds).

    `never`: traffic was still shifting when the fault ended: the clean stretch
    after the last touched call is shorter than `window` seconds, holds fewer
    than `CLEAN_ATTEMPTS` untouched attempts, or is shorter than `RHYTHM` x
    the longest gap between touched calls before it (their rhythm was not
    broken: a flapping health check touches a call every few seconds, and its
    last one lands anywhere in the last few seconds). The tail after a
    rhythm's last beat is one more gap of it, so the chance a flapping check
    still reads as a shift is about that of one gap beating twice the longest
    of the others: under 0.1 % for 70 touched calls in 20 s, about 5 % for 7
    in 10 s (a short fault at a low rate holds little evidence). A slow but
    real shift (touched calls back to back, then none) is not taken for one.
    """

    seconds: float | None
    never: bool
    touched: int
    last_touched: str | None = None
    strays: int = 0          # lone slow calls left out
    limit: float | None = None

    @property
    def value(self) -> float | None:
        return None if self.never else self.seconds


CLEAN_ATTEMPTS = 3  # untouched attempts a clean stretch must hold, besides its length
RHYTHM = 2.0        # the clean stretch must beat the longest gap between touched calls this much
STRAY_FACTOR, STRAY_SLACK = 2.0, 2


def traffic_shift(records: list[CallRecord], fault: FaultWindow, limit: float,
                  rule: RecoveryRule = RecoveryRule(), pre_slow_share: float = 0.0) -> Shift:
    """Traffic shift of one fault (see `Shift`); `limit`: the slow limit (or `pdd_good`)."""
    end = fault.ended_at if fault.ended_at is not None else \
        max((r.started_at for r in records), default=fault.started_at) + 1e-6
    during = sorted((r for r in records if fault.started_at <= r.started_at < end),
                    key=lambda r: r.started_at)
    # a call the faulted node answers while its undo brings it back is not one the fault touched
    back_from = fault.undo_started if fault.undo_started is not None else end

    def hard(r: CallRecord) -> bool:
        return r.pdd is None or (r.node in fault.nodes and r.started_at < back_from)

    touched = [r for r in during if hard(r) or r.pdd > limit]
    if not touched:
        return Shift(0.0, False, 0, limit=limit)
    times = [r.started_at for r in touched]
    strays = [r for i, r in enumerate(touched) if not hard(r)
              and (i == 0 or times[i] - times[i - 1] > rule.window)
              and (i == len(touched) - 1 or times[i + 1] - times[i] > rule.window)]
    allowed = STRAY_FACTOR * pre_slow_share * len(during) + STRAY_SLACK
    if strays and len(strays) <= allowed:
        ids = {id(r) for r in strays}
        touched = [r for r in touched if id(r) not in ids]
    else:
        strays = []
    if not touched:
        return Shift(0.0, False, 0, strays=len(strays), limit=limit)
    last = touched[-1]
    times = [r.started_at for r in touched]
    rhythm = max((b - a for a, b in zip(times, times[1:])), default=0.0)
    clean = [r for r in during if r.started_at > last.started_at]
    tail = end - last.started_at
    never = len(clean) < CLEAN_ATTEMPTS or tail < max(rule.window, RHYTHM * rhythm)
    return Shift(last.started_at - fault.started_at, never, len(touched), last.call_id,
                 len(strays), limit)


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
               bit: Outage | None = None, answered_at: float | None = None) -> dict:
    """RTO of calls: from the fault's start to the first answer, at or after it, of a call
    placed at or after it and answered by a node the fault did not take out (for a site-level
    fault: a node of the surviving site). A call placed before the fault and answered after it
    went through the old path, so it proves nothing about the survivor. When one silence
    stands out as where the fault bit (`bit`, see `where_it_bit`; `answered_at`: the answer
    that ended it), calls are back from that answer on: a call that slipped through in the
    moment the fault took to bite is not the service coming back, and the shorter gaps
    after it are reported as gaps, not as the service going away again. None: no such call."""
    hit = set(fault.nodes)
    since = max(fault.started_at, answered_at or fault.started_at) if bit else fault.started_at
    first = min((r for r in records if r.answered and r.started_at >= fault.started_at
                 and r.answered_at >= since and r.node not in hit),
                key=lambda r: r.answered_at, default=None)
    if first is None:
        return {"seconds": None, "call_id": None, "node": None}
    return {"seconds": first.answered_at - fault.started_at, "call_id": first.call_id,
            "node": first.node}
