"""The caller's journey past the 200: hear the IVR's prompt, press keys, wait for an agent with
a caller's patience, talk, hang up. Each step's time goes into the call's record.

How a contact centre shows "an agent answered" differs, so the entry point says: a key its
test agents send (RFC 4733, or a tone in the audio), maybe followed by the group's key; the
far end's re-INVITE or UPDATE (`reinvite`); or the 200 itself (`answer`: the queue is the
ringing, and patience ends it with a CANCEL). The prompt is a key too, or any audio at all,
and the IVR may turn the caller away with a key of its own (a callback offer, the failure
announcement). The steps read the keys the media pump hears on the call's stream, and the
far end's requests from the dialog, polling every 20 ms (a packet time): a wait's figure is
good to that.

The journey runs in the caller's own thread (a greenlet under Locust) from the answer to
the BYE, unlike a plain call whose hold needs no stack.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from harness.metrics.records import CallRecord
from harness.sip import dtmf
from harness.sip.sdp import media_address
from harness.sip.uac import HeldCall, end_call

POLL = 0.02
ANSWER = "answer"      # the agent marker that is the SIP 200 itself
REINVITE = "reinvite"  # the agent marker that is the far end's re-INVITE or UPDATE
AGENT_KEY_WITHIN = 0.5  # s: the group's key follows the agent marker at once (100 ms + gap)


@dataclass(frozen=True)
class Journey:
    prompt_within: float = 5.0        # the IVR's first prompt must come by then
    prompt_marker: str | None = "A"   # the key that is the prompt; None: any audio
    keys: str = ""                    # pressed once the prompt came (the menu choice)
    agent_marker: str = "D"           # the key the agents answer with
    agent_groups: dict | None = None  # key after the agent marker -> the group it names
    turn_away: dict | None = None     # key -> "callback" / "announcement" (the IVR turns away)
    patience: Callable[[random.Random], float] = lambda rng: float("inf")
    talk: Callable[[random.Random], float] = lambda rng: 10.0
    longest: float = 3600.0           # no journey outlives this (the media stream's end)


def journey_of(spec, entry) -> Journey:
    """The journey a scenario's `load.journey` asks for, through an entry point (its markers)."""
    patience = spec.patience.sampler() if spec.patience is not None else None
    turn_away = {k: how for k, how in ((entry.callback_marker, "callback"),
                                       (entry.announcement_marker, "announcement")) if k}
    return Journey(prompt_within=spec.prompt_within, prompt_marker=entry.prompt_marker,
                   keys=spec.keys, agent_marker=entry.agent_marker or "D",
                   agent_groups=dict(entry.agent_groups), turn_away=turn_away,
                   patience=patience or (lambda rng: float("inf")), talk=spec.talk.sampler(),
                   longest=spec.longest)


def _heard(held: HeldCall, key: str | None, after: float) -> float | None:
    """When `key` (None: any packet) was first heard on the call after `after` (a marker
    heard at `after` itself is the one that began the wait, not its end)."""
    s = held.stream
    if key is None:
        return s.stats.first_arrival
    return next((h.at for h in s.keys_heard() if h.digit == key and h.at > after), None)


def _key_after(held: HeldCall, at: float) -> str | None:
    """The key heard next after the one at `at` (a group's key after the agent marker)."""
    return next((h.digit for h in held.stream.keys_heard() if h.at > at), None)



def _wait(until: Callable[[], float | None], deadline: float, held: HeldCall) -> float | None:
    """Poll until `until()` gives a time, the deadline passes, or the far end hangs up (its
    BYE answered and kept in `held.hung_up`, for the call's end)."""
    while time.time() < deadline and held.hung_up is None:
        got = until()
        if got is not None:
            return got
        held.hung_up = held.dialog.far_end_bye()
        if held.hung_up is None:
            time.sleep(POLL)
    return until()


def _refreshed(held: HeldCall, after: float) -> float | None:
    """When the far end's first re-INVITE or UPDATE at or after `after` came (answered by the
    dialog); the media goes where its SDP says from then on (the agent's phone)."""
    held.dialog.serve_far_end()
    held.hung_up = held.hung_up or held.dialog.bye_at
    for at, _, body in held.dialog.refreshes:
        if at >= after:
            moved = media_address(body) if body else None
            if moved and held.stream is not None:
                held.stream.remote = moved
            return at
    return None


def answer_patience(j: Journey, rng: random.Random) -> float:
    """With the 200 as the agent's answer, the caller waits in the ringing: the INVITE's
    timeout is the caller's patience (then CANCEL), never past the longest journey."""
    return min(j.patience(rng), j.longest)


def unanswered(rec: CallRecord, j: Journey) -> CallRecord:
    """A journey whose 200 never came: with the 200 as the agent's answer, a caller who heard
    ringing and gave up (the INVITE's timeout, then CANCEL) abandoned the queue."""
    rec.journey = True
    if j.agent_marker == ANSWER and rec.ringing_at is not None and rec.status == 0 \
            and "timeout" in rec.reason:
        rec.queued_at, rec.abandoned_at = rec.started_at, rec.ended_at
    return rec


def run_journey(held: HeldCall, j: Journey, rng: random.Random) -> CallRecord:
    """The journey of an answered call (its media stream running), then its end."""
    rec = held.rec
    rec.journey = True
    try:
        if held.stream is not None:
            _steps(held, j, rng)
    finally:
        if held.stream is not None:
            held.stream.stop()
    return end_call(held)


def _steps(held: HeldCall, j: Journey, rng: random.Random) -> None:
    rec, answered = held.rec, held.rec.answered_at
    if j.agent_marker == ANSWER:  # the queue was the ringing; the 200 was the agent
        rec.queued_at, rec.agent_at = rec.started_at, answered
        _wait(lambda: None, min(time.time() + j.talk(rng), answered + j.longest), held)
        return
    rec.prompt_at = _wait(lambda: _heard(held, j.prompt_marker, answered),
                          answered + j.prompt_within, held)
    if rec.prompt_at is None:
        return  # no prompt: the IVR failed this caller, who hangs up
    # the caller waits from the prompt's arrival, not from when this thread looked (a poll
    # late under load would shorten every wait)
    queued = rec.prompt_at
    if j.keys:
        presses = dtmf.presses(time.time() + POLL, j.keys)
        held.stream.press(presses)
        # the menu choice is made when its key goes (an ACD acts on an event's first packet)
        queued = presses[-1].at
        time.sleep(max(0.0, queued - time.time()))
    rec.queued_at = queued
    patience = j.patience(rng)
    turn_away = j.turn_away or {}

    def agent() -> float | None:
        if j.agent_marker == REINVITE:
            return _refreshed(held, queued)
        return _heard(held, j.agent_marker, queued)

    def outcome() -> float | None:
        return min((t for t in [agent()] + [_heard(held, k, queued) for k in turn_away]
                    if t is not None), default=None)
    at = _wait(outcome, min(queued + patience, answered + j.longest), held)
    if at is None:
        if held.hung_up is None:
            rec.abandoned_at = time.time()  # patience ran out: the caller hangs up
        return
    if agent() != at:
        rec.turned_away = next(how for k, how in turn_away.items() if _heard(held, k, queued) == at)
        return  # the IVR said no (a callback offer, the failure announcement): hang up
    rec.agent_at = at
    if j.agent_groups:
        key = _wait(lambda: _key_after(held, at), at + AGENT_KEY_WITHIN, held)
        rec.answered_by = j.agent_groups.get(key, key or "")
    _wait(lambda: None, min(time.time() + j.talk(rng), answered + j.longest), held)
