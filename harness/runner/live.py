"""Live view while a drill runs: a rich panel on a terminal, plain log lines otherwise (CI)."""
from __future__ import annotations

import time
from collections import deque

from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.metrics.alarms import alarm_level, reached
from harness.ops.secrets import redact_text

COLOURS = {"green": "green", "yellow": "yellow", "orange": "dark_orange", "red": "red"}


class LiveView:
    """Listens to drill events, keeps running counts, shows them once a second."""

    def __init__(self, console: Console, duration: float, window: float = 10.0):
        self.console, self.duration, self.window = console, duration, window
        self.calls: deque[tuple[float, bool]] = deque()  # (end time, answered), last window only
        self.faults: dict[str, str] = {}
        self.active_calls = 0
        self.t0 = time.time()
        self.last = 0.0
        self.live: Live | None = None
        self.next_step = ""
        self.queue: tuple[int, int] | None = None  # (waiting, with an agent) on journeys

    def __call__(self, ev: dict) -> None:
        e = ev["event"]
        if e == "run_started":
            self.t0 = ev["ts"]
        elif e == "call":
            self.calls.append((ev["ts"], reached(ev["call"])))
            while self.calls and self.calls[0][0] < ev["ts"] - self.window:
                self.calls.popleft()  # a long drill's view holds one window, not every call
        elif e == "fault_injected":
            self.faults[ev["fault_id"]] = ev["description"]
            self._line(f"fault {ev['fault_id']} injected: {ev['description']}")
        elif e == "fault_rolled_back":
            self.faults.pop(ev["fault_id"], None)
            self._line(f"fault {ev['fault_id']} rolled back: {ev['note']}")
        elif e == "run_aborted":
            self._line(f"[red]aborted: {ev['reason']} during {ev.get('phase', 'the drill')}; "
                       f"rolled back in {ev['rolled_back_in']:.2f} s[/red]")

    def _line(self, text: str) -> None:
        self.console.log(redact_text(text))

    def _figures(self):
        now = time.time()
        recent = [a for s, a in self.calls if s >= now - self.window]
        rate = sum(recent) / len(recent) if recent else None
        return now - self.t0, len(recent) / self.window, rate

    def render(self) -> Table:
        elapsed, cps, rate = self._figures()
        level = alarm_level(rate)
        t = Table(title="hotline-drill", show_header=False, box=None)
        t.add_row("elapsed", f"{elapsed:5.1f}s of {self.duration:g}s "
                             f"({max(0.0, self.duration - elapsed):.0f}s left)")
        t.add_row("calls ended/s (10 s)", f"{cps:.1f}")
        t.add_row("calls finished", str(len(self.calls)))
        t.add_row("calls in progress", str(self.active_calls))
        if self.queue is not None:
            t.add_row("callers waiting / with an agent", f"{self.queue[0]} / {self.queue[1]}")
        t.add_row("answer rate (10 s)", f"[{COLOURS[level]}]{'—' if rate is None else f'{rate:.1%}'}"
                                        f" {level}[/{COLOURS[level]}]")
        t.add_row("faults active", "; ".join(self.faults) or "none")
        t.add_row("next", self.next_step or "—")
        return t

    def tick(self, run) -> None:
        self.active_calls = getattr(run, "load_in_flight", 0)
        self.next_step = getattr(run, "next_step", "")
        self.queue = getattr(run, "load_queue", None)
        now = time.time()
        if self.console.is_terminal:
            if self.live is None:
                self.live = Live(self.render(), console=self.console, refresh_per_second=2)
                self.live.start()
            self.live.update(self.render())
        elif now - self.last >= 5:
            self.last = now
            elapsed, cps, rate = self._figures()
            self.console.print(f"[{elapsed:6.1f}s] calls ended/s {cps:.1f}  finished {len(self.calls)}  "
                               f"in progress {self.active_calls}  "
                               + (f"waiting {self.queue[0]}  with an agent {self.queue[1]}  "
                                  if self.queue is not None else "")
                               + "answer rate "
                               f"{'—' if rate is None else f'{rate:.1%}'}  "
                               f"faults: {', '.join(self.faults) or 'none'}  next: {self.next_step}",
                               highlight=False)

    def close(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None
