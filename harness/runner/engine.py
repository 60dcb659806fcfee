"""The drill engine: one generic timeline executor for any scenario.

Order of a run: check the target is healthy (steady state before), start the
load, inject and roll back faults on schedule (each journaled first), stop
the load, roll back anything left, check the steady state after, and render
every output from the saved records. SIGINT/SIGTERM set `abort`; the loop
notices within a tick, rolls back first, then stops the load.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from harness.faults.base import Injector, lookup
from harness.load.agents import JOURNAL_ID, JOURNAL_TYPE, Phones, journal_recipe, leave_all
from harness.load.engine import LoadEngine
from harness.metrics.records import CallRecord
from harness.ops import OpsError
from harness.ops.state import state_home
from harness.runner.abort import Watchdog
from harness.runner.capacity import CapacityJudge
from harness.runner.events import EventBus, JsonlLog
from harness.runner.journal import Journal
from harness.runner.plan import Drill, PlannedFault
from harness.runner.probes import ProbeSet
from harness.scenario.model import RateChange
from harness.runner.steady import media_checked, steady_state

TICK = 0.1
HEALTH_EVERY = 1.0  # seconds between the load generator's health events


@dataclass
class ActiveFault:
    planned: PlannedFault
    injector: Injector
    recipe: dict
    started_at: float


@dataclass
class DrillRun:
    drill: Drill
    run_dir: Path
    journal: Journal
    run_id: str
    bus: EventBus = field(default_factory=EventBus)
    records: list[CallRecord] = field(default_factory=list)
    active: dict[str, ActiveFault] = field(default_factory=dict)
    abort_reason: str | None = None
    abort_at: float | None = None  # when the abort was asked for (signal, failed fault)
    stop_reason: str | None = None  # a normal early end (the capacity search found the knee)
    next_step: str = ""
    t0: float = 0.0
    log: JsonlLog | None = None  # events.jsonl, once the run folder is open
    probes: ProbeSet | None = None  # the scenario's data probes, started with the load
    phones: Phones | None = None    # the scenario's agents' phones, started with the load
    # set by a signal: what blocks on the outside world (probe sessions) ends at once
    interrupt: threading.Event = field(default_factory=threading.Event)
    abort_published: bool = False  # run_aborted is said once

    def request_abort(self, reason: str, at: float | None = None, hurry: bool = True) -> None:
        """Stop the run: the loop rolls back within a tick. `hurry` (a signal: someone wants
        the drill over now): whatever waits on the outside world is cut short too; an abort
        rule still reads what the probes saw, within their bounds."""
        self.abort_at = self.abort_at or at or time.time()
        self.abort_reason = reason
        if hurry:
            self.interrupt.set()

    def _collect_call(self, ev: dict) -> None:
        if ev["event"] == "call":
            self.records.append(ev["call"])

    # -- faults ---------------------------------------------------------------
    def inject(self, planned: PlannedFault) -> None:
        injector = planned.build()
        recipe = injector.recipe()
        self.journal.intent(self.run_id, planned.fault_id, planned.spec.type, planned.spec.target, recipe)
        started = time.time()
        try:
            injector.inject()
        except Exception:
            # it may have half-happened (one of two containers killed): undo what the recipe covers
            try:
                note = type(injector).undo(recipe)
                self.journal.closed(self.run_id, planned.fault_id, f"inject failed; undone: {note}")
            except Exception as undo_exc:  # left open in the journal for `drill recover`
                self.bus.publish("fault_rollback_failed", fault_id=planned.fault_id, error=str(undo_exc))
            raise
        extra = injector.recipe_after_inject()  # facts only injecting reveals, as a flood's pid
        if extra:
            recipe = {**recipe, **extra}
            self.journal.amend(self.run_id, planned.fault_id, extra)
        returned = in_effect = time.time()  # the window opens when inject() has done its work
        self.active[planned.fault_id] = ActiveFault(planned, injector, recipe, started)
        took = injector.verify()
        recorded = injector.took_effect_at() if took else None
        if recorded is not None:  # the target's own record, within the inject call
            in_effect = min(max(recorded, started), in_effect)
        nodes = self.drill.inventory.nodes_hit(planned.spec.target)  # nodes, not links
        self.bus.publish("fault_injected", ts=in_effect, fault_id=planned.fault_id, type=planned.spec.type,
                         target=planned.spec.target, nodes=nodes, verified=took,
                         inject_took=returned - started, description=injector.describe())
        if not took:
            self.abort_reason = f"fault {planned.fault_id} did not take effect"

    def rollback(self, fault_id: str) -> None:
        fault = self.active.pop(fault_id)  # popped first: a fault is never rolled back twice
        started = time.time()
        try:
            note = type(fault.injector).undo(fault.recipe)
        except OpsError as exc:
            self.bus.publish("fault_rollback_failed", fault_id=fault_id, error=str(exc))
            raise
        gone = time.time()  # ... and closes when undo() has done its work
        lifted = getattr(note, "at", None)  # or when the target says it did, within the call
        if lifted is not None:
            gone = min(max(lifted, started), gone)
        self.journal.closed(self.run_id, fault_id, note)
        self.bus.publish("fault_rolled_back", ts=gone, fault_id=fault_id, note=note,
                         undo_started=started, took=gone - started)

    def rollback_all(self) -> list[str]:
        """Roll back every active fault at once (in parallel: one slow restart must not
        hold up the others); return the errors."""
        ids = list(self.active)[::-1]
        if not ids:
            return []
        errors = []

        def one(fid: str) -> None:
            try:
                self.rollback(fid)
            except Exception as exc:  # recorded; the fault stays open in the journal
                errors.append(f"{fid}: {exc}")

        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            list(pool.map(one, ids))
        return errors

    # -- the timeline ---------------------------------------------------------
    def schedule(self) -> list[Step]:
        plan = [Step(c.at, "rate", c) for c in self.drill.scenario.load.shape]
        agents = self.drill.scenario.agents
        plan += [Step(at, "storm", None) for at in (agents.storm_at if agents else [])]
        for planned in self.drill.faults:
            plan.append(Step(planned.spec.at, "inject", planned))
            if planned.end is not None:
                plan.append(Step(planned.end, "rollback", planned))
        return sorted(plan, key=lambda x: (x.at, x.action == "inject"))  # rollbacks before injects

    def execute(self, load: LoadEngine, on_tick=None) -> None:
        """Run the timeline with `load`; returns when done or aborted.

        Phases: start the clock; each tick start the load when due, take the steps
        that are due, check the stop and abort rules; then end (aborted: roll back
        first, then stop the load; else stop the load, then roll back what is left).
        """
        sc = self.drill.scenario
        plan = self.schedule()
        load_end = min(sc.duration, sc.load.start + (sc.load.duration or sc.duration))
        watchdog = Watchdog(sc.abort_when, self.drill.inventory) if sc.abort_when else None
        judge = CapacityJudge(sc) if sc.load.capacity_search else None
        self._start_clock(judge)
        load_on, last_health = False, 0.0
        while not self.abort_reason:
            t = time.time() - self.t0
            if not load_on and t >= sc.load.start:
                load_on = self._start_load(load)
                if not load_on:
                    break
            self._take_due_steps(plan, t, load)
            if t >= sc.duration or (load_on and t >= load_end and not plan):
                break
            if self._stop_or_abort(judge, watchdog):
                break
            if load_on and time.time() - last_health >= HEALTH_EVERY:
                self.publish_health(load)
                last_health = time.time()
            if on_tick:
                self.next_step = describe_step(plan[0]) if plan else f"load stops at {load_end:g}s"
                on_tick(self)
            # wake for the next step on time: a fault's window must be as long as asked
            due = plan[0].at - (time.time() - self.t0) if plan else TICK
            time.sleep(min(TICK, max(0.0, due)))
        if self.abort_reason:
            self._end_aborted(load)
        else:
            self._end_normally(load, judge)

    def _start_clock(self, judge: CapacityJudge | None) -> None:
        self.bus.subscribe(self._collect_call, essential=True)
        if judge:
            self.bus.subscribe(judge, essential=True)
        self.t0 = time.time()
        self.bus.publish("run_started", ts=self.t0, run_id=self.run_id)

    def _start_load(self, load: LoadEngine) -> bool:
        try:
            load.start()
        except (RuntimeError, OSError) as exc:  # e.g. SIPp refused its options
            self.abort_reason = f"the load could not start: {exc}"
            return False
        self.bus.publish("load_started", users=load.users,
                         calls_per_second=self.drill.scenario.load.calls_per_second)
        if self.drill.scenario.probes:
            self.probes = ProbeSet(self.drill.scenario.probes, self.run_id, self.interrupt)
            self.probes.start()
        agents = self.drill.scenario.agents
        if agents is not None:
            self.phones = Phones.for_drill(
                agents, self.drill.inventory.registrar,
                lambda a: self.bus.publish("registration", ts=a.ended_at, **asdict(a)),
                lambda a: self.bus.publish("agent_answered", ts=a.at, call_id=a.call_id,
                                           agent=a.agent))
            registrar = self.drill.inventory.registrar
            self.journal.intent(self.run_id, JOURNAL_ID, JOURNAL_TYPE, registrar.address,
                                journal_recipe(agents, registrar))
            self.phones.start(spread=agents.spread)
        return True

    def stop_agents(self) -> None:
        """The agents' phones leave the location table (a signal's stop waits less)."""
        if self.phones is not None:
            phones, self.phones = self.phones, None
            left = phones.stop(within=0.4 if self.interrupt.is_set() else None)
            if not left:
                self.journal.closed(self.run_id, JOURNAL_ID, "every agent un-REGISTERed")
            else:
                self.bus.publish("fault_rollback_failed", fault_id=JOURNAL_ID,
                                 error=f"{len(left)} agent(s) not known to have left the "
                                       f"location table ({', '.join(left[:5])}"
                                       f"{', ...' if len(left) > 5 else ''}): `drill recover` "
                                       "un-REGISTERs them")

    def stop_probes(self) -> None:
        if self.probes:
            # kept: asked after the rollback which servers take writes (a second stop is a no-op)
            self.probes.stop(self.bus.publish, [r.call_id for r in self.records if r.answered],
                             grace=self.abort_at is None)

    def _take_due_steps(self, plan: list, t: float, load: LoadEngine) -> None:
        """Rate changes, injects and rollbacks whose time has come, in schedule order; any
        injector failure aborts the run cleanly, with rollback."""
        while plan and plan[0].at <= t and not self.abort_reason:
            _, action, step = plan.pop(0)
            if action == "rate":
                users = load.set_rate(step.calls_per_second, step.ramp)
                self.bus.publish("load_changed", calls_per_second=step.calls_per_second,
                                 ramp=step.ramp, users=users)
                continue
            if action == "storm":
                if self.phones is not None:
                    self.bus.publish("agents_storm", agents=self.phones.storm())
                continue
            try:
                if action == "inject":
                    self.inject(step)
                elif step.fault_id in self.active:
                    self.rollback(step.fault_id)
            except Exception as exc:
                kind = "" if isinstance(exc, (OpsError, OSError)) else f"{type(exc).__name__}: "
                self.abort_reason = f"{action} of {step.fault_id} failed: {kind}{exc}"

    def _stop_or_abort(self, judge: CapacityJudge | None, watchdog: Watchdog | None) -> bool:
        """The capacity search found its knee (a normal end), or an abort rule fired."""
        if judge and not self.abort_reason:
            self.stop_reason = judge.check(self)
            if self.stop_reason:
                self.bus.publish("run_stopping", reason=self.stop_reason)
                return True
        if watchdog and not self.abort_reason:
            fired = watchdog.check(self)
            if fired:
                self.request_abort(fired, hurry=False)
                return True
        return False

    def _end_aborted(self, load: LoadEngine) -> None:
        errors = self.rollback_all()  # first: nothing left behind, then the load
        load.abort()
        self.stop_probes()
        self.stop_agents()
        self.publish_aborted(errors)

    def publish_aborted(self, errors: list[str], phase: str = "") -> None:
        """Once a run was told to stop: everything is rolled back now (`rolled_back_in`: from
        the request until here, what a signal waited for)."""
        if self.abort_published:
            return
        self.abort_published = True
        requested = self.abort_at or time.time()
        self.bus.publish("run_aborted", reason=self.abort_reason, requested_at=requested,
                         rolled_back_in=time.time() - requested, rollback_errors=errors,
                         phase=phase or "the timeline")

    def _end_normally(self, load: LoadEngine, judge: CapacityJudge | None) -> None:
        sc = self.drill.scenario
        stopped_at = time.time()
        load.stop(wait=sc.load.hold + sc.load.invite_timeout + sc.load.bye_timeout + 2,
                  interrupted=lambda: self.abort_reason is not None)
        if self.abort_reason:  # a signal while calls drained: faults go first, at once
            self._end_aborted(load)
            return
        self.publish_health(load)
        self.stop_probes()  # before the rollback: a restored old primary is not the drill's
        if judge and not self.stop_reason:
            judge.finish(self, stopped_at)
        errors = self.rollback_all()
        if errors:
            self.bus.publish("rollback_errors", errors=errors)
        self.stop_agents()  # after the rollback: the phones' way back is part of the drill
        if self.abort_at is not None:  # told to stop while the probes were read: they were cut
            self.publish_aborted(errors, "the data probes after the load")

    def publish_health(self, load: LoadEngine) -> None:
        """The generator's watch on its own schedule (engines without one say nothing)."""
        health = load.health()
        if health:
            self.bus.publish("generator_health", **health)

    def check_after(self) -> bool:
        if self.abort_at is not None:  # stopped (a signal, an abort rule): end now, and say so
            self.bus.publish("steady_state_after", ok=None,
                             problems=[f"not checked: the drill was stopped ({self.abort_reason})"])
            self.publish_aborted([], "after the rollback")
            return False
        ok, problems = steady_state(self.drill.inventory, within=10.0,
                                    stop=lambda: self.abort_at is not None,
                                    **media_checked(self.drill.scenario.load))
        if self.abort_at is not None:  # told to stop while checking: the check was cut short
            self.bus.publish("steady_state_after", ok=None,
                             problems=[f"not finished: the drill was stopped ({self.abort_reason})"])
            self.publish_aborted([], "the steady-state check after")
            return False
        self.bus.publish("steady_state_after", ok=ok, problems=problems)
        if self.probes:
            self.probes.check_primaries(self.bus.publish)
            if self.abort_at is not None:
                self.publish_aborted([], "the check of which servers take writes")
        return ok


class Step(NamedTuple):
    """One step of a drill's timeline, in seconds from its start."""
    at: float
    action: Literal["rate", "inject", "rollback", "storm"]
    what: RateChange | PlannedFault | None


def describe_step(step: Step) -> str:
    at, action, what = step
    if action == "rate":
        return f"load to {what.calls_per_second:g} calls/s at {at:g}s"
    if action == "storm":
        return f"registration storm at {at:g}s"
    return f"{action} {what.fault_id} at {at:g}s"


class Interrupted(Exception):
    """SIGINT or SIGTERM before anything was injected: the drill stops there (exit 3)."""


class StopSignals:
    """SIGINT/SIGTERM as a request to stop, from the first moment of a drill.

    Installed before the target is started: a signal then is remembered and the
    drill stops before injecting anything (`check`; `event` cuts short what the set-up
    waits for). Once a run is attached, a signal asks that run to abort: it rolls back
    first, then stops the load, and whatever the run waits on is cut short. While the
    report is written, a signal stops the writing (`since`, `raising`).
    """

    def __enter__(self) -> "StopSignals":
        self.reason: str | None = None
        self.at: float | None = None
        self.run: DrillRun | None = None
        self.raise_now = False
        self.last: float | None = None  # the latest signal
        self.event = threading.Event()  # set by any signal
        self.old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handler(self, signum, _frame) -> None:
        self.reason = f"received {signal.Signals(signum).name}"
        self.last = time.time()
        self.at = self.at or self.last
        self.event.set()
        if self.run is not None:
            self.run.request_abort(self.reason, self.at)
        if self.raise_now:
            self.raise_now = False  # once: the handler that catches it must not be cut short
            raise Interrupted(self.reason)

    def attach(self, run: DrillRun) -> None:
        self.run = run
        if self.reason:  # it came while the run was being set up
            run.request_abort(self.reason, self.at)

    def check(self) -> None:
        if self.reason and self.run is None:
            raise Interrupted(self.reason)

    @contextmanager
    def raising(self):
        """Within it, a signal raises Interrupted at once: for pure computation, which has
        nothing to roll back and nothing half-written to leave."""
        self.raise_now = True
        try:
            yield
        finally:
            self.raise_now = False

    def since(self, t: float) -> str | None:
        """Why the drill was told to stop, when a signal came at or after `t`."""
        return self.reason if self.last is not None and self.last >= t else None

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def recover(journal: Journal) -> list[tuple[dict, str]]:
    """Undo every fault the journal still holds open (after a crash). Idempotent."""
    done = []
    for entry in journal.open_faults():
        try:
            note = leave_all(entry["recipe"]) if entry["type"] == JOURNAL_TYPE else \
                lookup(entry["type"]).undo(entry["recipe"])
        except (OpsError, KeyError, OSError) as exc:
            done.append((entry, f"FAILED: {exc}"))
            continue
        journal.closed(entry["run_id"], entry["fault_id"], f"recovered: {note}")
        done.append((entry, note))
    return done


def new_journal() -> Journal:
    return Journal(state_home() / "journal.jsonl")


def open_event_log(run: DrillRun) -> JsonlLog:
    log = JsonlLog(run.run_dir / "events.jsonl")
    run.bus.subscribe(log, essential=True)
    return log
