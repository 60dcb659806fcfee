"""Steady SIP call load with Locust used as a library (headless).

Each Locust user is one caller that places a call, holds it, hangs up, and
waits out the rest of its pacing interval; `users = calls_per_second * interval`
callers spawned at `calls_per_second` give a steady arrival rate. Every call
is reported to Locust as one request (so its stats and tooling work) and to
the drill as one call record.

Importing this module imports Locust, which monkey-patches the standard
library for gevent: the CLI imports it only when a drill actually runs.
"""
from __future__ import annotations

import itertools
import random
import resource
import time
from typing import Callable

from locust import User, constant_pacing, task
from locust.env import Environment
from locust.exception import StopUser

from harness.metrics.records import CallRecord
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec
from harness.sip.message import host_port
from harness.sip.uac import CallOptions, place_call


class LoadController:
    """Owns one Locust environment for one drill; the drill's only view of the load."""

    def __init__(self, spec: LoadSpec, entries: list[EntryPoint], on_record: Callable[[CallRecord], None],
                 node_of: Callable[[str], str], seed: int | None = None,
                 max_calls: int | None = None):
        self.spec = spec
        self.entries = entries
        self.on_record = on_record
        self.node_of = node_of
        self.rng = random.Random(seed)
        self._carrier = itertools.cycle(entries)
        self.accepting = True
        self.in_flight = 0
        self.placed = 0
        self.started_at = self.last_placed_at = 0.0
        self.max_calls = max_calls
        self.interval = spec.hold + spec.bye_timeout + 2.0
        self.users = max(1, round(spec.calls_per_second * self.interval))
        self.env: Environment | None = None

    def _user_class(self):
        ctl = self

        class SipCaller(User):
            wait_time = constant_pacing(ctl.interval)

            @task
            def call(self):
                if not ctl.accepting or (ctl.max_calls is not None and ctl.placed >= ctl.max_calls):
                    raise StopUser()
                ctl.place_one(self.environment)

        return SipCaller

    def place_one(self, env: Environment) -> CallRecord:
        entry = next(self._carrier)
        opts = CallOptions(hold=self.spec.hold, rtp=self.rng.random() < self.spec.rtp_share,
                           invite_timeout=self.spec.invite_timeout,
                           bye_timeout=self.spec.bye_timeout, transport=entry.transport,
                           local_ip=entry.caller_ip)
        self.in_flight += 1
        self.placed += 1
        self.last_placed_at = time.time()
        try:
            rec = place_call(entry.addr, opts, carrier=entry.name, node_of=self.node_of)
        finally:
            self.in_flight -= 1
        env.events.request.fire(
            request_type="SIP", name=f"INVITE via {entry.name}",
            response_time=(rec.pdd or 0) * 1000, response_length=0,
            exception=None if rec.answered else RuntimeError(rec.reason or "failed"),
            context={"node": rec.node})
        self.on_record(rec)
        return rec

    def start(self) -> None:
        # two sockets per call in progress: lift the soft open-file limit to the hard one
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.started_at = time.time()
        self.env = Environment(user_classes=[self._user_class()])
        runner = self.env.create_local_runner()
        runner.start(self.users, spawn_rate=self.spec.calls_per_second)

    def set_rate(self, calls_per_second: float, ramp: float = 0.0) -> int:
        """Change the arrival rate (a step, surge or spike); returns the new number of callers."""
        users = max(1, round(calls_per_second * self.interval))
        # new callers are spread over the ramp (at least over one pacing of the new rate)
        spawn = users / ramp if ramp > 0 else max(calls_per_second, users)
        self.users = users
        if self.env and self.env.runner:
            self.env.runner.start(users, spawn_rate=spawn)
        return users

    def stop(self, wait: float) -> None:
        """Place no new call, let calls in progress finish (at most `wait` s), then quit."""
        self.accepting = False
        deadline = time.time() + wait
        while self.in_flight and time.time() < deadline:
            time.sleep(0.05)
        if self.env and self.env.runner:
            self.env.runner.quit()

    def abort(self) -> None:
        """Stop at once: calls in progress are cut short and not recorded."""
        self.accepting = False
        if self.env and self.env.runner:
            self.env.runner.quit()


def node_mapper(sip_to_node: dict[tuple[str, int], str]) -> Callable[[str], str]:
    """Contact URI of the answering side -> inventory node name (the URI if unknown)."""
    def node_of(contact: str) -> str:
        try:
            return sip_to_node.get(host_port(contact), contact)
        except (ValueError, IndexError):
            return contact
    return node_of
