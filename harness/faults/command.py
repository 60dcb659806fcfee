"""`command`: the escape hatch — an inject command and a rollback command, each with a timeout.

For faults no injector knows yet (fail over a database, flip a DNS record).
Commands are argv lists, run without a shell; the rollback should be
harmless to run twice, since `drill recover` may repeat it after a crash.
"""
from __future__ import annotations

import subprocess

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.base import FaultError, Injector, register
from harness.scenario.model import Duration


class CommandParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inject: list[str] = Field(min_length=1)
    rollback: list[str] = Field(min_length=1)
    verify: list[str] | None = None
    timeout: Duration = 30.0


def run(argv: list[str], timeout: float, what: str) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise FaultError(f"{what}: {argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise FaultError(f"{what}: {' '.join(argv)} did not finish within {timeout:g}s") from exc
    if res.returncode != 0:
        raise FaultError(f"{what}: {' '.join(argv)} exited {res.returncode}: "
                         f"{(res.stderr or res.stdout).strip()[-300:]}")
    return res.stdout.strip()


@register
class Command(Injector):
    """Run `inject`; roll back by running `rollback`; `verify` (exit 0) confirms the effect."""

    type = "command"
    acts_outside_inventory = True
    Params = CommandParams

    def describe(self) -> str:
        return f"run {' '.join(self.params.inject)!r} for {self.target.name}; " \
               f"rollback: run {' '.join(self.params.rollback)!r}"

    def recipe(self) -> dict:
        return {"rollback": self.params.rollback, "timeout": self.params.timeout,
                "target": self.target.name}

    def inject(self) -> None:
        run(self.params.inject, self.params.timeout, "inject")

    def verify(self) -> bool:
        if not self.params.verify:
            return True
        try:
            run(self.params.verify, self.params.timeout, "verify")
            return True
        except FaultError:
            return False

    @classmethod
    def undo(cls, recipe: dict) -> str:
        out = run(recipe["rollback"], recipe["timeout"], "rollback")
        return f"{recipe['target']}: rollback command done" + (f" ({out[:120]})" if out else "")
