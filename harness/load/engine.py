"""The one view the drill engine has of a load generator, whichever engine places the calls.

Three engines implement it: `sip_load.LoadController` (Locust in this process),
`distributed.MasterLoad` (Locust workers) and `sipp_engine.SippLoad` (SIPp).
"""
from __future__ import annotations

from typing import Callable, Protocol


class LoadEngine(Protocol):
    users: int  # callers (or SIPp processes) at work

    @property
    def in_flight(self) -> int:
        """Calls placed and not yet ended."""

    def start(self) -> None:
        """Begin placing calls at the scenario's rate."""

    def set_rate(self, calls_per_second: float, ramp: float = 0.0) -> int:
        """A step, surge or spike, reached over `ramp` seconds; returns the callers."""

    def stop(self, wait: float, interrupted: Callable[[], bool] = lambda: False) -> None:
        """Place no new call; let calls in progress end (at most `wait` s, and no longer
        once `interrupted()` says so: a signal during the drain)."""

    def abort(self) -> None:
        """Stop at once (an abort: rollback comes first)."""

    def health(self) -> dict | None:
        """The generator's watch on its own schedule (None: the engine keeps none)."""

    def close(self) -> None:
        """Release what the engine holds (processes, sockets); safe to call twice."""
