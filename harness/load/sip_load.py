"""SIP call load with Locust used as a library (headless).

Arrivals are paced by one dispatcher, not by each user: it releases a token
every 1/rate seconds (the rate can step, surge, ramp or spike at any time) and
an idle Locust user takes the token and places one call. Per-user pacing
would keep the phase of users spawned together and repeat their burst every
cycle; a shared clock gives the asked rate from the first second. Every call
is reported to Locust as one request (so its stats and tooling work) and to
the drill as one call record.

Importing this module imports Locust, which monkey-patches the standard
library for gevent: the CLI imports it only when a drill actually runs.
"""
from __future__ import annotations

import itertools
import math
import random
import resource
import time
from typing import Callable, Sequence

import gevent
from gevent.queue import Queue
from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser

from harness.load.callers import SPARE_CALLERS, callers_for, callers_typical, failover_span
from harness.load.health import GeneratorHealth, keep_in_ram
from harness.metrics.records import CallRecord
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec
from harness.sip.message import host_port
from harness.sip.trunk import close_trunks
from harness.load.entry_calls import call_options
from harness.sip.uac import HeldCall, end_call, start_call
from harness.load.journey import ANSWER, answer_patience, journey_of, run_journey, unanswered


class Pacer:
    """The arrival clock: the rate now (a linear ramp between two rates) and the next slot."""

    def __init__(self, rate: float):
        self.rate_from = self.rate_to = rate
        self.ramp_start, self.ramp = 0.0, 0.0

    def change(self, rate: float, ramp: float, now: float) -> None:
        self.rate_from, self.rate_to = self.rate_at(now), rate
        self.ramp_start, self.ramp = now, ramp

    def rate_at(self, t: float) -> float:
        if self.ramp <= 0 or t >= self.ramp_start + self.ramp:
            return self.rate_to
        share = max(0.0, (t - self.ramp_start) / self.ramp)
        return self.rate_from + (self.rate_to - self.rate_from) * share




class LoadController:
    """Owns one Locust environment for one drill; the drill's only view of the load."""

    def __init__(self, spec: LoadSpec, entries: list[EntryPoint], on_record: Callable[[CallRecord], None],
                 node_of: Callable[[str], str], seed: int | None = None,
                 max_calls: int | None = None, manage_users: bool = True,
                 callees: Sequence[str] = ()):
        self.spec = spec
        self.manage_users = manage_users  # False on a Locust worker: the master sets the users
        self.entries = entries
        self.on_record = on_record
        self.node_of = node_of
        self.rng = random.Random(seed)
        self._carrier = itertools.cycle(entries)
        self._callee = itertools.cycle(callees) if callees else itertools.repeat("hotline")
        self.accepting = True
        self.in_flight = 0
        self.placed = 0
        self.started_at = self.last_placed_at = 0.0
        self.max_calls = max_calls
        self.failover = failover_span(entries)
        self.users = callers_typical(spec, spec.calls_per_second) if manage_users \
            else callers_for(spec, spec.calls_per_second, self.failover)
        self.ceiling = callers_for(spec, spec.calls_per_second, self.failover)
        self.idle = 0  # callers waiting for an arrival
        self.pacer = Pacer(spec.calls_per_second)
        self.tokens: Queue = Queue()
        self.env: Environment | None = None
        self._dispatcher = None
        self._held: dict[gevent.Greenlet, HeldCall] = {}  # answered calls in their hold, by timer
        self._ending: set[gevent.Greenlet] = set()  # held calls saying BYE now
        self.watch = GeneratorHealth()

    def user_class(self):
        ctl = self

        class SipCaller(User):
            wait_time = constant(0)

            @task
            def call(self):
                ctl.idle += 1
                try:
                    scheduled = ctl.tokens.get()  # idle until the dispatcher releases the next arrival
                finally:
                    ctl.idle -= 1
                if not ctl.accepting:
                    raise StopUser()
                ctl.watch.left(scheduled, time.time())
                ctl.place_one(self.environment)

        return SipCaller

    def _dispatch(self) -> None:
        """Release one token per arrival; never more than max_calls."""
        issued, nxt = 0, time.time()
        while self.accepting and (self.max_calls is None or issued < self.max_calls):
            now = time.time()
            if now < nxt:
                gevent.sleep(min(nxt - now, 0.05))
                continue
            self.tokens.put(nxt)  # the arrival's scheduled time: how late it leaves is watched
            self.watch.arrival()
            if self.idle <= SPARE_CALLERS and self.users < self.ceiling and self.manage_users:
                self._grow(self.pacer.rate_at(now))
            issued += 1
            rate = self.pacer.rate_at(nxt)
            nxt += self.rng.expovariate(rate) if self.spec.arrivals == "poisson" else 1.0 / rate
            if nxt < now - 1.0:  # never catch up more than 1 s: those arrivals are skipped
                self.watch.skipped += int((now - 1.0 - nxt) * self.pacer.rate_at(now))
                nxt = now - 1.0

    def _grow(self, rate: float) -> None:
        """More callers: half a second of arrivals at the current rate (at least 4)."""
        self._set_users(min(self.ceiling, self.users + max(4, math.ceil(rate * 0.5))))

    def _set_users(self, users: int) -> None:
        """Idle callers are cheap to spawn, all at once; on a worker the master sets them."""
        if users > self.users and self.env and self.env.runner and self.manage_users:
            self.env.runner.start(users, spawn_rate=users)
        self.users = users

    def _watch_loop(self, every: float = 0.05) -> None:
        """Sample how much later than asked a sleep on the event loop wakes up."""
        while self.accepting:
            t = time.perf_counter()
            gevent.sleep(every)
            self.watch.stalled(max(0.0, time.perf_counter() - t - every))

    def health(self) -> dict:
        return self.watch.snapshot()

    def place_one(self, env: Environment) -> CallRecord:
        """One arrival: the caller sets the call up, then hands the answered call's hold to a
        timer (_end_held) and is free for the next arrival; a held call keeps no greenlet.
        A call with a journey (load.journey) runs it in a greenlet of its own (_journey)."""
        entry = next(self._carrier)
        j = self.spec.journey
        journey = journey_of(j, entry) if j and self.rng.random() < j.share else None
        ringing_queue = journey is not None and journey.agent_marker == ANSWER
        opts = call_options(entry, hold=journey.longest if journey else self.spec.hold,
                            rtp=journey is not None or self.rng.random() < self.spec.rtp_share,
                            invite_timeout=answer_patience(journey, self.rng) if ringing_queue
                            else self.spec.invite_timeout,
                            bye_timeout=self.spec.bye_timeout, callee=next(self._callee),
                            dscp=self.spec.rtp_dscp)
        self.in_flight += 1
        self.placed += 1
        self.last_placed_at = time.time()
        held = None
        try:
            rec, held = start_call(None if entry.located_by_dns else entry.addr, opts, carrier=entry.name, node_of=self.node_of)
            if held is not None and journey is not None:
                self._held[gevent.spawn(self._journey, env, entry, held, journey)] = held
            elif held is not None:
                timer = gevent.spawn_later(max(0.0, held.end - time.time()), self._end_held, env,
                                           entry, held)
                self._held[timer] = held
        finally:
            if held is None:
                self.in_flight -= 1
        if held is None:
            self._record(env, entry, unanswered(rec, journey) if journey else rec)
        return rec

    def _end_held(self, env: Environment, entry: EntryPoint, held: HeldCall) -> None:
        me = gevent.getcurrent()
        if self._held.pop(me, None) is None:
            return  # dropped before its time came
        self._ending.add(me)
        try:
            rec = end_call(held)
        finally:
            self._ending.discard(me)
            self.in_flight -= 1
        self._record(env, entry, rec)

    def _journey(self, env: Environment, entry: EntryPoint, held: HeldCall, journey) -> None:
        me = gevent.getcurrent()
        try:
            rec = run_journey(held, journey, self.rng)
        finally:
            if self._held.pop(me, None) is not None:
                self.in_flight -= 1
        self._record(env, entry, rec)

    def queue_now(self) -> tuple[int, int]:
        """Callers on a journey waiting for an agent now, and callers with one (the live view)."""
        recs = [h.rec for h in list(self._held.values()) if h.rec.journey]
        waiting = sum(r.queued_at is not None and r.agent_at is None and r.abandoned_at is None
                      and not r.turned_away for r in recs)
        return waiting, sum(r.agent_at is not None for r in recs)

    def _drop_held(self) -> None:
        """Calls still held when the run stops short: cut, not recorded (as callers killed
        mid-call were). Timers not fired yet are cancelled and their calls closed here; calls
        saying BYE are killed and close themselves."""
        for timer, held in list(self._held.items()):
            timer.kill(block=False)
            held.close()
            self.in_flight -= 1
        self._held.clear()
        for ending in list(self._ending):
            ending.kill(block=False)

    def _record(self, env: Environment, entry: EntryPoint, rec: CallRecord) -> None:
        env.events.request.fire(
            request_type="SIP", name=f"INVITE via {entry.name}",
            response_time=(rec.pdd or 0) * 1000, response_length=0,
            exception=None if rec.answered else RuntimeError(rec.reason or "failed"),
            context={"node": rec.node})
        self.on_record(rec)

    def start(self) -> None:
        # two sockets per call in progress: lift the soft open-file limit to the hard one
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.started_at = time.time()
        keep_in_ram()
        self.env = Environment(user_classes=[self.user_class()])
        runner = self.env.create_local_runner()
        runner.start(self.users, spawn_rate=self.users)  # idle callers: spawning them is cheap
        self.start_dispatch()

    @property
    def dispatching(self) -> bool:
        """Arrivals are being handed to the callers (on a worker: once the master's first
        rate came and its callers were spawned)."""
        return self._dispatcher is not None

    def start_dispatch(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = gevent.spawn(self._dispatch)
            gevent.spawn(self._watch_loop)

    def set_rate(self, calls_per_second: float, ramp: float = 0.0) -> int:
        """Change the arrival rate (a step, surge or spike), reached over `ramp` seconds;
        returns the number of callers."""
        self.pacer.change(calls_per_second, ramp, time.time())
        self.ceiling = max(self.ceiling, callers_for(self.spec, calls_per_second, self.failover))
        self._set_users(max(self.users, callers_typical(self.spec, calls_per_second)))
        return self.users

    def stop(self, wait: float, interrupted: Callable[[], bool] = lambda: False) -> None:
        """Place no new call, let calls in progress finish (at most `wait` s), then quit."""
        self.accepting = False
        self.watch.unplaced = self.tokens.qsize()  # released arrivals no caller ever took
        deadline = time.time() + wait
        while self.in_flight and time.time() < deadline and not interrupted():
            time.sleep(0.05)
        if self.env and self.env.runner:
            self.env.runner.quit()
        self._drop_held()
        close_trunks()  # the TLS trunks' connections: nothing left open behind the load

    def abort(self) -> None:
        """Stop at once: calls in progress are cut short and not recorded."""
        self.accepting = False
        if self.env and self.env.runner:
            self.env.runner.quit()
        self._drop_held()
        close_trunks()

    def close(self) -> None:
        """Nothing outlives the run here: the callers are greenlets of this process."""


def node_mapper(sip_to_node: dict[tuple[str, int], str],
                agents: Sequence[str] = ()) -> Callable[[str], str]:
    """Contact URI of the answering side -> inventory node name, or the agent whose phone
    answered (its Contact names it); the URI if unknown."""
    names = set(sip_to_node.values()) | set(agents)

    def node_of(contact: str) -> str:
        try:
            found = sip_to_node.get(host_port(contact))
        except (ValueError, IndexError):
            found = None
        user = contact.partition(":")[2].partition("@")[0] if "@" in contact else ""
        return found or (user if user in names else contact)  # else a Contact naming the node
    return node_of
