"""The event seam: load, faults and probes publish; the log, live view and counters listen.

`CATALOGUE` lists every event a run can publish, with the fields it carries
(as Locust's `Events` lists its hooks): a publisher that names an unknown event
or leaves out a field fails at once, in the tests, not in a report weeks later.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.metrics.records import CallRecord
from harness.metrics.registration import ATTEMPT_FIELDS
from harness.ops.secrets import redact

Listener = Callable[[dict], None]
log = logging.getLogger("hotline_drill.events")


@dataclass(frozen=True)
class Event:
    fields: tuple[str, ...]
    about: str
    more: bool = False  # may carry further fields (engine totals, whose keys vary)


CATALOGUE: dict[str, Event] = {
    "run_started": Event(("run_id",), "the timeline's clock starts"),
    "load_started": Event(("users", "calls_per_second"), "the load generator places calls"),
    "load_changed": Event(("calls_per_second", "ramp", "users"), "a load step, surge or spike"),
    "workers_ready": Event(("workers", "master"), "every Locust worker connected"),
    "listener_detached": Event(("listener", "on", "error"),
                               "an optional listener (the live view) raised and was dropped"),
    "call": Event(("call",), "one call attempt ended: a CallRecord (a dict once in the log)"),
    "fault_injected": Event(("fault_id", "type", "target", "nodes", "verified", "inject_took",
                             "description"), "the fault holds: the window opens (ts: the target's own record "
                             "where it keeps one, else when inject() returned)"),
    "fault_rolled_back": Event(("fault_id", "note", "undo_started", "took"),
                               "the fault is lifted: the window closes (ts: the target's own "
                               "record where it keeps one, else when undo() returned)"),
    "fault_rollback_failed": Event(("fault_id", "error"), "left open in the journal"),
    "registration": Event(ATTEMPT_FIELDS,
                          "one REGISTER of an agent's phone ended (metrics/registration.py)"),
    "agents_storm": Event(("agents",), "every agent's phone lost its flow and registers "
                                       "again at once (agents.storm_at)"),
    "agent_answered": Event(("call_id", "agent"),
                            "an agent's phone answered a call delivered to it (load/agent_desk.py)"),
    "rollback_errors": Event(("errors",), "rollbacks that failed at the end of a run"),
    "generator_health": Event(("offered", "placed", "late", "skipped", "unplaced",
                               "loop_lag_p99", "loop_lag_max", "loop_samples"),
                              "the load generator's watch on its own schedule"),
    "capacity_step": Event(("rate", "started", "ended", "attempts", "answered", "missed"),
                           "one step of a capacity search, judged"),
    "run_stopping": Event(("reason",), "a normal early end (the capacity search found the knee)"),
    "run_aborted": Event(("reason", "requested_at", "rolled_back_in", "rollback_errors", "phase"),
                         "an abort rule or a signal: everything rolled back (phase: where the "
                         "drill was when told)"),
    "steady_state_after": Event(("ok", "problems"), "the target's health after the rollback"),
    "probe_records": Event(("probe", "kind", "acks", "lag", "replayed", "surviving", "cdr",
                            "errors"),
                           "a data probe's acknowledged writes, lag samples (the server's replay "
                           "age, and the newest heartbeat the standby had replayed), surviving "
                           "rows and CDR check (null without one)"),
    "promql_samples": Event(("probe", "query", "samples"),
                            "a PromQL probe's samples: [time, value or null, error or null]"),
    "primaries_after": Event(("probe", "primaries", "error"),
                             "a data probe's servers taking writes after the rollback "
                             "(null: its dsn names one server)"),
    "run_finished": Event((), "the run is over; outputs follow"),
    "worker_totals": Event(("worker",), "a Locust worker's own counts", more=True),
    "workers_lost": Event(("expected", "reported"), "workers that never reported their calls"),
    "sipp_totals": Event(("carrier", "exit_code", "logged"), "one SIPp's own counts", more=True),
    "webhook": Event(("sent", "url", "error"), "a game-day notice delivered (or not)"),
    "gameday_revealed": Event(("plan", "sealed_sha256"), "the sealed game-day plan, opened"),
    "ack": Event(("by", "note"), "on-call acknowledged the incident"),
}


class EventBus:
    """Publishes catalogued events to listeners. A listener that raises is logged and detached
    (a broken live view must not end a drill mid-inject, as Locust's `EventHook.fire` carries
    on); an `essential` one (the event log, the records, a judge) raises through, so the run
    aborts with its rollback rather than carrying on with figures it cannot trust."""

    def __init__(self):
        self.listeners: list[Listener] = []
        self.essential: set[int] = set()

    def subscribe(self, fn: Listener, *, essential: bool = False) -> None:
        self.listeners.append(fn)
        if essential:
            self.essential.add(id(fn))

    def publish(self, event: str, **data) -> dict:
        spec = CATALOGUE.get(event)
        if spec is None:
            raise ValueError(f"event {event!r} is not in the catalogue (runner/events.py)")
        missing = [f for f in spec.fields if f not in data]
        extra = [] if spec.more else [f for f in data if f != "ts" and f not in spec.fields]
        if missing or extra:
            raise ValueError(f"event {event!r}: missing {missing}, not in the catalogue {extra}")
        ev = {"event": event, "ts": data.pop("ts", time.time()), **data}
        for fn in list(self.listeners):
            if id(fn) in self.essential:
                fn(ev)
                continue
            try:
                fn(ev)
            except Exception as exc:  # noqa: BLE001 — any error of an optional listener
                self._detach(fn, event, exc)
        return ev

    def _detach(self, fn: Listener, event: str, exc: Exception) -> None:
        self.listeners.remove(fn)
        name = getattr(fn, "__qualname__", type(fn).__qualname__)
        error = f"{type(exc).__name__}: {exc}"
        log.warning("listener %s failed on %s and was detached: %s", name, event, error)
        self.publish("listener_detached", listener=name, on=event, error=error)


def _plain(value):
    """JSON for what the bus carries as objects: a call record is serialised here, once."""
    if isinstance(value, CallRecord):
        return value.to_dict()
    return str(value)


class JsonlLog:
    """events.jsonl: one line per event, flushed as it happens so a crash loses nothing."""

    def __init__(self, path: Path):
        self.fh = open(path, "a", buffering=1)

    def __call__(self, ev: dict) -> None:
        if ev["event"] != "call":  # a call record holds ids and addresses, never a credential
            ev = redact(ev)
        self.fh.write(json.dumps(ev, default=_plain) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()
