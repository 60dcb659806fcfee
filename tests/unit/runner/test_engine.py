"""The drill engine's timeline, with a fake injector and a fake load (both named as fakes:
they stand in for Docker, processes and Locust so the order of steps can be checked exactly).

Real time, short timelines (tenths of a second): the engine sleeps until each step is due.
"""
import os
import signal
import time

import pytest
from pydantic import BaseModel, ConfigDict

from harness.faults.base import FaultError, Injector
from harness.runner.engine import DrillRun, StopSignals
from harness.runner.journal import Journal
from harness.runner.plan import Drill, PlannedFault
from harness.scenario.inventory import EntryPoint, Node, TargetInventory
from harness.scenario.model import Scenario

STEPS: list[tuple[str, str]] = []  # what the fakes were asked to do, in order


class FakeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_inject: bool = False
    never_takes: bool = False
    undo_raises: bool = False


class FakeInjector(Injector):
    """A fake fault: writes down each step instead of touching anything."""

    type = "fake.fault"
    Params = FakeParams

    def describe(self) -> str:
        return f"fake fault on {self.target.name}"

    def recipe(self) -> dict:
        return {"fault_id": self.fault_id, "undo_raises": self.params.undo_raises}

    def inject(self) -> None:
        STEPS.append(("inject", self.fault_id))
        if self.params.fail_inject:
            raise FaultError("half done: the second container would not die")

    def verify(self) -> bool:
        return not self.params.never_takes

    @classmethod
    def undo(cls, recipe: dict) -> str:
        STEPS.append(("undo", recipe["fault_id"]))
        if recipe["undo_raises"]:
            raise FaultError("the engine does not answer")
        return f"undid {recipe['fault_id']}"


class FakeLoad:
    """A fake load engine (the LoadEngine protocol): places no call, writes down its steps."""

    users = 1
    in_flight = 0

    def __init__(self, on_start=None, on_drain=None):
        self.on_start, self.on_drain = on_start, on_drain

    def start(self):
        STEPS.append(("load", "start"))
        if self.on_start:
            self.on_start()

    def set_rate(self, calls_per_second, ramp=0.0):
        STEPS.append(("load", f"rate {calls_per_second:g}"))
        return 1

    def stop(self, wait, interrupted=lambda: False):
        STEPS.append(("load", "stop"))
        if self.on_drain:  # calls still in progress: drain until they end or a signal comes
            self.on_drain()
            deadline = time.monotonic() + wait
            while not interrupted() and time.monotonic() < deadline:
                time.sleep(0.01)
            STEPS.append(("load", "drain interrupted" if interrupted() else "drained"))

    def abort(self):
        STEPS.append(("load", "abort"))

    def health(self):
        return None

    def close(self):
        STEPS.append(("load", "close"))


@pytest.fixture(autouse=True)
def clean_steps():
    STEPS.clear()


def drill(faults: list[dict], duration: float = 0.6) -> Drill:
    sc = Scenario.model_validate({
        "name": "fake", "duration": duration,
        "load": {"calls_per_second": 1, "hold": "100ms", "invite_timeout": "100ms",
                 "bye_timeout": "100ms"},
        "faults": [{"type": "fake.fault", "target": "pbx-1", **f} for f in faults]})
    inv = TargetInventory(name="fake", nodes=[Node(name="pbx-1", sip="127.0.0.1:9")],
                          entry_points=[EntryPoint(name="carrier-a", address="127.0.0.1:9")],
                          allowlist=["pbx-1"])
    planned = [PlannedFault(spec, spec.id, FakeInjector, FakeParams.model_validate(spec.params),
                            inv.nodes[0]) for spec in sc.faults]
    return Drill(path=None, scenario=sc, inventory=inv, faults=planned)


def run_of(d: Drill, tmp_path) -> tuple[DrillRun, list[dict]]:
    run = DrillRun(d, tmp_path, Journal(tmp_path / "journal.jsonl"), run_id="r1")
    events: list[dict] = []
    run.bus.subscribe(events.append)
    return run, events


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def test_a_rollback_due_at_the_same_instant_as_an_inject_runs_first(tmp_path):
    d = drill([{"id": "a", "at": 0.1, "duration": 0.2}, {"id": "b", "at": 0.3, "duration": 0.1}])
    schedule = DrillRun(d, tmp_path, Journal(tmp_path / "j"), "r1").schedule()
    at_03 = [(action, pf.fault_id) for at, action, pf in schedule if at == pytest.approx(0.3)]
    assert at_03 == [("rollback", "a"), ("inject", "b")]
    run, events = run_of(d, tmp_path)
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("inject", "b"),
                     ("undo", "b"), ("load", "stop")]
    assert run.journal.open_faults() == []
    assert names(events).count("fault_injected") == 2 == names(events).count("fault_rolled_back")


def test_a_fault_that_does_not_take_aborts_and_rolls_back_before_the_load_stops(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.1, "never_takes": True}]), tmp_path)
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("load", "abort")]
    aborted = events[-1]
    assert aborted["event"] == "run_aborted" and aborted["reason"] == "fault a did not take effect"
    assert aborted["rollback_errors"] == []
    assert run.journal.open_faults() == []


def test_a_failed_inject_is_undone_from_its_recipe_and_aborts_the_run(tmp_path):
    d = drill([{"id": "a", "at": 0.1, "fail_inject": True},
               {"id": "b", "at": 0.4}])
    run, events = run_of(d, tmp_path)
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("load", "abort")]
    assert "inject of a failed: half done" in events[-1]["reason"]
    assert "fault_injected" not in names(events)  # its window never opened
    closed = [e for e in run.journal.entries() if e["op"] == "rolled_back"]
    assert closed[0]["note"].startswith("inject failed; undone: undid a")
    assert run.journal.open_faults() == []


def test_a_rollback_that_raises_is_reported_and_left_open_for_recover(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.1, "duration": 0.1,
                                 "undo_raises": True}]), tmp_path)
    run.execute(FakeLoad())
    failed = [e for e in events if e["event"] == "fault_rollback_failed"]
    assert failed and failed[0]["fault_id"] == "a" and "does not answer" in failed[0]["error"]
    assert events[-1]["event"] == "run_aborted" and "rollback of a failed" in events[-1]["reason"]
    assert [e["fault_id"] for e in run.journal.open_faults()] == ["a"]
    assert run.active == {}  # popped first: never rolled back twice


def test_a_fault_still_active_at_the_end_is_rolled_back_after_the_load_stops(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.1}]), tmp_path)  # no duration: until the end
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("load", "stop"), ("undo", "a")]
    assert run.journal.open_faults() == []


def test_sigterm_mid_run_rolls_back_first_then_stops_the_load(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.0}], duration=30), tmp_path)
    with StopSignals() as stop:
        stop.attach(run)

        def terminate_after_inject():
            # the signal arrives while the fault is active: the engine notices on its next tick
            run.bus.subscribe(lambda ev: ev["event"] == "fault_injected"
                              and os.kill(os.getpid(), signal.SIGTERM))
        run.execute(FakeLoad(on_start=terminate_after_inject))
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("load", "abort")]
    assert events[-1]["event"] == "run_aborted" and events[-1]["reason"] == "received SIGTERM"
    assert run.journal.open_faults() == []


def test_sigterm_while_calls_drain_rolls_back_at_once(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.0}], duration=0.3), tmp_path)
    with StopSignals() as stop:
        stop.attach(run)
        run.execute(FakeLoad(on_drain=lambda: os.kill(os.getpid(), signal.SIGTERM)))
    # the fault was still in place while calls drained: the signal rolls it back, not the clock
    assert STEPS == [("load", "start"), ("inject", "a"), ("load", "stop"),
                     ("load", "drain interrupted"), ("undo", "a"), ("load", "abort")]
    assert events[-1]["event"] == "run_aborted" and events[-1]["reason"] == "received SIGTERM"
    assert run.journal.open_faults() == []


def test_a_signal_after_the_load_ends_the_steady_state_check_within_a_second(tmp_path):
    # nothing answers at 127.0.0.1:9: the check after would retry for 10 s; a SIGTERM 0.3 s
    # in ends it at its next round (each round: two OPTIONS of 0.5 s at most)
    import threading
    run, events = run_of(drill([]), tmp_path)
    with StopSignals() as stop:
        stop.attach(run)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        assert run.check_after() is False
        took = time.monotonic() - t0
    assert run.abort_at is not None and "SIGTERM" in run.abort_reason
    assert took < 0.3 + 1.0
    # a signal already in: the check is not begun, and the events say why
    t0 = time.monotonic()
    assert run.check_after() is False and time.monotonic() - t0 < 0.1
    last = [e for e in events if e["event"] == "steady_state_after"][-1]
    assert last["ok"] is None and "stopped (received SIGTERM)" in last["problems"][0]


def finished_run(tmp_path, stop: StopSignals, signal_mid_run: bool = False) -> DrillRun:
    """A run folder as `drill run` leaves it before its report: the scenario, events.jsonl."""
    import yaml

    from harness.runner.engine import open_event_log
    d = drill([{"id": "a", "at": 0.1, "duration": 0.1}], duration=0.4)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(
        {"name": "fake", "duration": 0.4, "load": {"calls_per_second": 1, "hold": "100ms"},
         "faults": [{"id": "a", "type": "fake.fault", "target": "pbx-1", "at": 0.1,
                     "duration": 0.1}]}))
    run, _ = run_of(d, tmp_path)
    run.log = open_event_log(run)
    stop.attach(run)
    on_start = (lambda: os.kill(os.getpid(), signal.SIGTERM)) if signal_mid_run else None
    run.execute(FakeLoad(on_start=on_start))
    run.bus.publish("run_finished")
    run.log.close()
    return run


def test_a_signal_while_the_report_is_written_leaves_the_rest_unwritten_and_says_so(
        tmp_path, monkeypatch):
    import json

    from rich.console import Console

    from harness.report import render
    from harness.runner.drill import write_report
    real = render.write_calls_csv

    def csv_then_signal(*a, **kw):  # the signal lands while the first file is written
        real(*a, **kw)
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(render, "write_calls_csv", csv_then_signal)
    console = Console(record=True, width=200, soft_wrap=True)  # as the CLI's
    with StopSignals() as stop:
        run = finished_run(tmp_path, stop)
        summary = write_report(run.run_dir, stop, console)
    assert summary["exit_code"] == 3
    assert summary["report_stopped"] == {"reason": "received SIGTERM", "not_written": [
        "junit.xml", "review.md", "report.html", "metrics.prom"]}
    assert json.loads((tmp_path / "summary.json").read_text())["exit_code"] == 3
    assert (tmp_path / "calls.csv").exists() and not (tmp_path / "report.html").exists()
    assert f"drill report {tmp_path}" in console.export_text()
    # what was left out is written later from the same records, with the drill's own outcome
    monkeypatch.setattr(render, "write_calls_csv", real)
    assert render.render_run(tmp_path)["exit_code"] in (0, 1) and (tmp_path / "report.html").exists()


def test_a_signal_while_the_figures_are_computed_ends_it_at_once(tmp_path, monkeypatch):
    from rich.console import Console

    from harness.runner import drill as drill_module

    def slow_figures(run_dir):  # a long drill's figures: seconds of pure computation
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sum(range(1000))
        raise AssertionError("the signal did not cut the computation short")
    monkeypatch.setattr(drill_module, "summarize", slow_figures)
    console = Console(record=True, width=200, soft_wrap=True)  # as the CLI's
    with StopSignals() as stop:
        run = finished_run(tmp_path, stop)
        t0 = time.monotonic()
        summary = drill_module.write_report(run.run_dir, stop, console)
        took = time.monotonic() - t0
    assert summary == {"exit_code": 3} and took < 1.0
    assert not (tmp_path / "summary.json").exists()
    assert "no report written" in console.export_text()


def test_a_signal_during_the_drill_does_not_stop_its_report(tmp_path):
    from rich.console import Console

    from harness.runner.drill import write_report
    with StopSignals() as stop:
        run = finished_run(tmp_path, stop, signal_mid_run=True)
        summary = write_report(run.run_dir, stop, Console(record=True))
    assert summary["run"]["aborted"] and summary["exit_code"] == 3
    assert "report_stopped" not in summary and (tmp_path / "report.html").exists()


def test_a_listener_that_raises_is_detached_and_the_drill_carries_on(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.1, "duration": 0.2}]), tmp_path)

    def broken_view(ev):
        if ev["event"] == "fault_injected":
            raise RuntimeError("the terminal went away")
    run.bus.subscribe(broken_view)
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("load", "stop")]
    detached = [e for e in events if e["event"] == "listener_detached"]
    assert len(detached) == 1 and "terminal went away" in detached[0]["error"]
    assert "broken_view" in detached[0]["listener"] and detached[0]["on"] == "fault_injected"
    assert "run_aborted" not in names(events) and run.journal.open_faults() == []


def test_an_essential_listener_that_raises_aborts_with_the_rollback(tmp_path):
    run, events = run_of(drill([{"id": "a", "at": 0.1, "duration": 5}], duration=5), tmp_path)

    def full_disk(ev):
        if ev["event"] == "fault_injected":
            raise OSError(28, "No space left on device")
    run.bus.subscribe(full_disk, essential=True)
    run.execute(FakeLoad())
    assert STEPS == [("load", "start"), ("inject", "a"), ("undo", "a"), ("load", "abort")]
    assert events[-1]["event"] == "run_aborted" and "No space left" in events[-1]["reason"]
    assert run.journal.open_faults() == [] and "listener_detached" not in names(events)
