"""Load beyond one machine: Locust's master/worker mode.

The drill process is the Locust master: it owns the timeline and the faults,
tells the workers the arrival rate (each takes rate / workers) and how many
idle callers to keep, and merges the call records they send back into one
run. A worker is `drill run FILE --worker HOST[:PORT]`: it places calls only,
injects nothing, and prints its own totals when the master quits it.
Messages (Locust custom messages over its ZeroMQ link):
  master -> workers: hd_rate {rate, ramp}, hd_stop
  worker -> master:  hd_call {record}, hd_state {in_flight}, hd_totals {...}
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import gevent
from locust import User, task
from locust.env import Environment

from harness.load.agents import dialled
from harness.load.health import keep_in_ram, merge
from harness.load.callers import callers_for, failover_span
from harness.load.sip_load import LoadController
from harness.metrics.records import CallRecord
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec

DEFAULT_PORT = 5557


def split_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host or text, int(port) if port else default_port


class SipCaller(User):
    """The master's stand-in for the workers' caller class (same name: Locust dispatches by name)."""

    @task
    def call(self):  # never runs on the master
        raise RuntimeError("the master places no calls")


class MasterLoad:
    """The drill's view of load spread over Locust workers; the same interface as LoadController."""

    def __init__(self, spec: LoadSpec, on_record: Callable[[CallRecord], None], bind: str,
                 on_event: Callable[..., None], entries: list[EntryPoint] = ()):
        self.spec, self.on_record, self.on_event = spec, on_record, on_event
        self.failover = failover_span(list(entries))
        host, port = split_hostport(bind)
        self.env = Environment(user_classes=[SipCaller])
        self.runner = self.env.create_master_runner(host, port)
        self.port = port
        for name, fn in (("hd_call", self._on_call), ("hd_state", self._on_state),
                         ("hd_totals", self._on_totals)):
            self.runner.register_message(name, fn)
        self.workers = 0
        self.states: dict[str, dict] = {}
        self.totals: dict[str, dict] = {}
        self.received = 0
        self.users = 0
        self.quitted = False  # the runner was told to quit (stop, then maybe abort)
        self.children: list[subprocess.Popen] = []

    # -- worker messages --------------------------------------------------
    def _on_call(self, environment, msg, **_):
        self.received += 1
        self.on_record(CallRecord.from_dict(msg.data))

    def _on_state(self, environment, msg, **_):
        self.states[msg.node_id] = msg.data

    def _on_totals(self, environment, msg, **_):
        self.totals[msg.node_id] = msg.data
        self.on_event("worker_totals", worker=msg.node_id,
                      **{k: v for k, v in msg.data.items() if k != "health"})

    @property
    def in_flight(self) -> int:
        return sum(s.get("in_flight", 0) for s in self.states.values())

    def queue_now(self) -> tuple[int, int]:
        """Callers waiting for an agent and callers with one, over the workers."""
        qs = [s.get("queue") or (0, 0) for s in self.states.values()]
        return sum(q[0] for q in qs), sum(q[1] for q in qs)

    def health(self) -> dict | None:
        """The workers' own watch on their schedules, merged (final totals where sent)."""
        latest = {**{k: v.get("health") for k, v in self.states.items()},
                  **{k: v.get("health") for k, v in self.totals.items()}}
        return merge([h for h in latest.values() if h])

    # -- workers ------------------------------------------------------------
    def spawn_local_workers(self, n: int, scenario: Path, target: str | None, log_dir: Path) -> None:
        """Start n worker processes on this machine (stopped by pid in close())."""
        for i in range(n):
            argv = [sys.executable, "-m", "harness.cli", "run", str(scenario),
                    "--worker", f"127.0.0.1:{self.port}"] + (["--target", target] if target else [])
            log = open(log_dir / f"worker-{i + 1}.log", "w")
            self.children.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))

    def wait_for_workers(self, n: int, within: float) -> int:
        deadline = time.time() + within
        while self.runner.worker_count < n and time.time() < deadline:
            if any(c.poll() is not None for c in self.children):
                break  # a local worker died at start: its log says why
            time.sleep(0.1)
        self.workers = self.runner.worker_count
        return self.workers

    # -- the LoadController interface ------------------------------------------
    def _users_for(self, rate: float) -> int:
        return callers_for(self.spec, rate / self.workers, self.failover) * self.workers

    def start(self) -> None:
        self.set_rate(self.spec.calls_per_second, 0.0)

    def set_rate(self, calls_per_second: float, ramp: float = 0.0) -> int:
        users = max(self.users, self._users_for(calls_per_second))
        self.runner.send_message("hd_rate", {"rate": calls_per_second / self.workers, "ramp": ramp,
                                             "users": users // self.workers})
        if users > self.users:
            self.runner.start(users, spawn_rate=users)
            self.users = users
        return self.users

    def stop(self, wait: float, interrupted: Callable[[], bool] = lambda: False) -> None:
        """No new calls; wait for every worker's totals (its calls have ended), then quit them."""
        self.runner.send_message("hd_stop", {"wait": wait})
        deadline = time.time() + wait + 5
        while len(self.totals) < self.workers and time.time() < deadline and not interrupted():
            time.sleep(0.1)
        if len(self.totals) < self.workers:  # its calls in progress were not reported: say so
            self.on_event("workers_lost", expected=self.workers, reported=len(self.totals))
        self.runner.quit()
        self.quitted = True

    def abort(self) -> None:
        if self.quitted:
            return  # stopped already (a signal came while the calls drained)
        self.runner.send_message("hd_stop", {"wait": 0})
        self.runner.quit()
        self.quitted = True

    def close(self, grace: float = 5.0) -> None:
        """Make sure the local workers are gone (by pid: they were started here)."""
        deadline = time.time() + grace
        for c in self.children:
            try:
                c.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(c.pid, signal.SIGKILL)
                c.wait()


def run_worker(drill, master: str, out=sys.stdout) -> dict:
    """`drill run FILE --worker HOST[:PORT]`: place calls as the master says until it quits us."""
    from harness.load.sip_load import node_mapper
    host, port = split_hostport(master)
    sc = drill.scenario
    entries = drill.inventory.carriers(sc.load.carriers)
    sent = {"records": 0, "answered": 0}
    env_box: dict = {}

    def send(rec: CallRecord) -> None:
        env_box["runner"].send_message("hd_call", rec.to_dict())
        sent["records"] += 1
        sent["answered"] += int(rec.answered)

    callees = dialled(sc)
    ctl = LoadController(sc.load, entries, send, node_mapper(drill.inventory.node_by_sip(), callees),
                         seed=sc.seed, manage_users=False, callees=callees)
    env = Environment(user_classes=[ctl.user_class()])  # named SipCaller, as on the master
    ctl.env = env

    def on_rate(environment, msg, **_):
        ctl.pacer.change(msg.data["rate"], msg.data["ramp"], time.time())
        if not ctl.dispatching:
            gevent.spawn(start_when_spawned, msg.data.get("users", 0))

    def start_when_spawned(users: int, within: float = 10.0):
        """The first arrivals wait for the callers the master is spawning here: a schedule
        started before them would be late by the spawning, not by the calls."""
        deadline = time.time() + within
        while runner.user_count < users and time.time() < deadline:
            gevent.sleep(0.02)
        ctl.pacer.change(ctl.pacer.rate_to, 0.0, time.time())
        ctl.start_dispatch()

    def on_stop(environment, msg, **_):
        ctl.accepting = False

        def drain():
            ctl.watch.unplaced = ctl.tokens.qsize()
            deadline = time.time() + msg.data.get("wait", 0)
            while ctl.in_flight and time.time() < deadline:
                gevent.sleep(0.05)
            runner.send_message("hd_totals", {"placed": ctl.placed, "sent": sent["records"],
                                              "answered": sent["answered"], "health": ctl.health()})
        gevent.spawn(drain)

    def report_state():
        while True:
            runner.send_message("hd_state", {"in_flight": ctl.in_flight, "health": ctl.health(),
                                             "queue": ctl.queue_now()})
            gevent.sleep(0.5)

    keep_in_ram()  # before connecting: the master may send its first message at once
    runner = env.create_worker_runner(host, port)
    env_box["runner"] = runner
    runner.register_message("hd_rate", on_rate)  # at once: the master may be quick
    runner.register_message("hd_stop", on_stop)
    gevent.spawn(report_state)
    runner.greenlet.join()  # until the master sends quit
    totals = {"worker": runner.client_id, "placed": ctl.placed, "sent": sent["records"],
              "answered": sent["answered"]}
    print(json.dumps({"worker_totals": totals}), file=out, flush=True)
    return totals
