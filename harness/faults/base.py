"""The injector protocol and the registry that maps scenario `type:` strings to injectors.

An injector is built from a fault spec and the inventory entry it targets.
Before injecting, the runner journals `recipe()`: everything `undo(recipe)`
needs to roll the fault back, so a later `drill recover` (after the harness was
SIGKILLed) undoes it with the very same code path as a normal rollback.
"""
from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

REGISTRY: dict[str, type["Injector"]] = {}


class FaultError(Exception):
    """A fault could not be injected, verified or rolled back."""


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Injector:
    """Base of every injector. Subclasses set `type`, `Params`, and implement the four steps."""

    type: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, fault_id: str, target, params: BaseModel):
        self.fault_id = fault_id
        self.target = target
        self.params = params

    def describe(self) -> str:
        """One line for --dry-run and reports: what it does and how it is undone."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Get ready before the load starts: import heavy clients, reach the engine.

        Importing a client library in the middle of a drill stalls the load generator
        for as long as the import takes (seconds, from a cold disk). A FaultError
        here means a dead endpoint: the drill stops with exit 2, nothing injected.
        """

    def recipe(self) -> dict[str, Any]:
        """JSON-able facts `undo` needs; journaled before `inject` runs."""
        raise NotImplementedError

    def inject(self) -> None:
        raise NotImplementedError

    # optional: `recipe_after_inject() -> dict`, facts only injecting reveals; the
    # runner journals them as an amendment right after `inject` returns.

    def verify(self) -> bool:
        """True once the fault has really taken effect (checked from outside)."""
        raise NotImplementedError

    @classmethod
    def undo(cls, recipe: dict[str, Any]) -> str:
        """Roll back from a recipe alone; idempotent. Returns what it did."""
        raise NotImplementedError


def register(cls: type[Injector]) -> type[Injector]:
    REGISTRY[cls.type] = cls
    return cls


def lookup(type_name: str) -> type[Injector]:
    load_builtin()
    if type_name not in REGISTRY:
        close = difflib.get_close_matches(type_name, REGISTRY, n=1)
        hint = f"did you mean '{close[0]}'?" if close else \
            f"known types: {', '.join(sorted(REGISTRY))}"
        raise KeyError(f"unknown fault type '{type_name}' ({hint})")
    return REGISTRY[type_name]


def load_builtin() -> None:
    """Import the built-in injector modules (each registers its types)."""
    from harness.faults import command, docker, net, process, sipflood, toxiproxy, udp  # noqa: F401
