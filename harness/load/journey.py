"""The caller's journey past the 200: hear the IVR's prompt, press keys, wait for an agent with
a caller's patience, talk, hang up. Each step's time goes into the call's record.

How a contact centre shows "an agent answered" differs; here it is a key its test agents
send (RFC 4733, as the sandbox ACD does), and the prompt is a key too, or any audio at all.
The steps read the digits the media pump hears on the call's stream, and the far end's BYE
from the dialog, polling every 20 ms (a packet time): a wait's figure is good to that.

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
from harness.sip.uac import HeldCall, end_call

POLL = 0.02


@dataclass(frozen=True)
class Journey:
    prompt_within: float = 5.0        # the IVR's first prompt must come by then
    prompt_marker: str | None = "A"   # the key that is the prompt; None: any audio
    keys: str = ""                    # pressed once the prompt came (the menu choice)
    agent_marker: str = "D"           # the key the agents answer with
    patience: Callable[[random.Random], float] = lambda rng: float("inf")
    talk: Callable[[random.Random], float] = lambda rng: 10.0
    longest: float = 3600.0           # no journey outlives this (the media stream's end)


def journey_of(spec, entry) -> Journey:
    """The journey a scenario's `load.journey` asks for, through an entry point (its markers)."""
    patience = spec.patience.sampler() if spec.patience is not None else None
    return Journey(prompt_within=spec.prompt_within, prompt_marker=entry.prompt_marker,
                   keys=spec.keys, agent_marker=entry.agent_marker or "D",
                   patience=patience or (lambda rng: float("inf")), talk=spec.talk.sampler(),
                   longest=spec.longest)


def _heard(held: HeldCall, key: str | None, after: float) -> float | None:
    """When `key` (None: any packet) was first heard on the call at or after `after`."""
    s = held.stream
    if key is None:
        return s.stats.first_arrival
    return next((h.at for h in list(s.events.begun) if h.digit == key and h.at >= after), None)


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
    rec.prompt_at = _wait(lambda: _heard(held, j.prompt_marker, answered),
                          answered + j.prompt_within, held)
    if rec.prompt_at is None:
        return  # no prompt: the IVR failed this caller, who hangs up
    queued = time.time()
    if j.keys:
        presses = dtmf.presses(time.time() + POLL, j.keys)
        held.stream.press(presses)
        # the menu choice is made when its key goes (an ACD acts on an event's first packet)
        queued = presses[-1].at
        time.sleep(max(0.0, queued - time.time()))
    rec.queued_at = queued
    patience = j.patience(rng)
    agent = _wait(lambda: _heard(held, j.agent_marker, queued),
                  min(queued + patience, answered + j.longest), held)
    if agent is None:
        if held.hung_up is None:
            rec.abandoned_at = time.time()  # patience ran out: the caller hangs up
        return
    rec.agent_at = agent
    _wait(lambda: None, min(time.time() + j.talk(rng), answered + j.longest), held)
