"""The capacity search, live: judge each rate step once its calls are over; stop at the knee.

The load's rate changes (from `load.capacity_search`) are ordinary timeline
steps; this judge listens for them, waits until every call started in a step
must have ended, and judges the step with the pure `step_misses`. The first
step that misses a target ends the drill normally (not an abort).
"""
from __future__ import annotations

import time

from harness.metrics.capacity import in_window, knee, step_misses
from harness.scenario.model import Scenario


class CapacityJudge:
    def __init__(self, sc: Scenario):
        spec = sc.load
        self.rates = spec.capacity_search.rates()
        self.step_duration = spec.capacity_search.step_duration
        # a step is judged once every call started in it must have ended (a journey's
        # calls: once its longest journey must have)
        held = spec.journey.longest if spec.journey else spec.hold
        self.settle = spec.invite_timeout + held + spec.bye_timeout + 0.5
        self.sla = sc.sla.model_dump()
        self.journey_options = {"service_time": sc.metrics.service_time,
                                "short_abandon": sc.metrics.short_abandon}
        self.starts: list[tuple[float, float]] = []  # (ts, rate) of each rate taking effect
        self.steps: list[dict] = []

    def __call__(self, ev: dict) -> None:  # bus listener
        if ev["event"] in ("load_started", "load_changed"):
            self.starts.append((ev["ts"], ev["calls_per_second"]))

    def _judge_ready(self, run, now: float, load_stopped_at: float | None) -> str | None:
        while len(self.steps) < len(self.starts):
            i = len(self.steps)
            start, rate = self.starts[i]
            end = self.starts[i + 1][0] if i + 1 < len(self.starts) else \
                min(start + self.step_duration, load_stopped_at or float("inf"))
            if end - start < self.step_duration * 0.95:  # cut short by the end of the drill
                return None
            if now < end + self.settle and load_stopped_at is None:
                return None
            recs = in_window(run.records, start, end)
            missed = step_misses(recs, self.sla, **self.journey_options)
            step = {"rate": rate, "started": start, "ended": end, "attempts": len(recs),
                    "answered": sum(r.answered for r in recs), "missed": missed}
            self.steps.append(step)
            run.bus.publish("capacity_step", **step)
            if missed:
                k = knee(self.steps)
                return (f"capacity search: {rate:g} calls/s missed {', '.join(missed)}; "
                        f"knee {'below ' + format(self.rates[0], 'g') if k is None else format(k, 'g')} calls/s")
        if len(self.steps) == len(self.rates):
            return f"capacity search: every step up to {self.rates[-1]:g} calls/s met the targets"
        return None

    def check(self, run) -> str | None:
        """During the run: a reason to stop (the knee is found, or every step passed)."""
        return self._judge_ready(run, time.time(), None)

    def finish(self, run, load_stopped_at: float) -> None:
        """After the load stopped and every call ended: judge the complete steps left."""
        self._judge_ready(run, time.time(), load_stopped_at)
