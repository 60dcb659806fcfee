"""What a scenario's `target:` names: an installed target plug-in, or an inventory YAML.

A target plug-in is registered under the `hotline_drill.targets` entry point
(the sandbox and the container lab are two) and is any object with:

    name: str
    Options: a pydantic model of the scenario's `sandbox:` options, or None (takes none)
    inventory(options) -> TargetInventory     InputError when it cannot be reached
    describe(options) -> list[str]            extra lines for `drill run --dry-run`
    running(options, log, stop) -> context manager  the target kept up for one drill;
                                              SetupError (exit 2, nothing injected) when it
                                              cannot be; `stop()` true: the drill was told to
                                              stop, so cut any wait short (the drill then ends)
    recover() -> list[str]                    `drill recover`: undo what a killed drill left
                                              of the target (a sandbox it started), say what
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Protocol

from pydantic import BaseModel

from harness.ops import plugins
from harness.scenario.inventory import TargetInventory


class Target(Protocol):
    name: str
    Options: type[BaseModel] | None

    def inventory(self, options: BaseModel | None) -> TargetInventory: ...

    def describe(self, options: BaseModel | None) -> list[str]: ...

    def running(self, options: BaseModel | None, log: Callable[[str], None],
                stop: Callable[[], bool]) -> AbstractContextManager: ...

    def recover(self) -> list[str]: ...


def all_targets() -> dict[str, Target]:
    return plugins.load(plugins.TARGETS)


def target_named(name: str) -> Target | None:
    """The installed target plug-in called `name`, or None (then `name` is a file path)."""
    return all_targets().get(name)
