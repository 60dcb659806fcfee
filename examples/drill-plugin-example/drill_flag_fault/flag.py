"""`flag.maintenance`: raise a node's maintenance flag (a file it reads), lower it on rollback.

Many PBXs and SBCs stop taking new calls while a flag file exists; a drill can
raise it on one node and watch the hotline route round it. The node's flag
path is a parameter, so the fault needs nothing from the inventory but the name.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.faults.base import FaultError, Injector, register


class FlagParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # the flag file the node watches
    text: str = "maintenance: raised by hotline-drill\n"


@register
class MaintenanceFlag(Injector):
    type = "flag.maintenance"
    Params = FlagParams

    def describe(self) -> str:
        return (f"raise the maintenance flag {self.params.path} of {self.target.name}; "
                "rollback: remove it")

    def prepare(self) -> None:
        folder = Path(self.params.path).parent
        if not folder.is_dir():
            raise FaultError(f"the flag's folder {folder} does not exist")

    def recipe(self) -> dict:
        # journaled before inject: `drill recover` removes the flag from this alone
        return {"path": self.params.path, "existed": Path(self.params.path).exists()}

    def inject(self) -> None:
        Path(self.params.path).write_text(self.params.text)

    def verify(self) -> bool:
        return Path(self.params.path).exists()

    @classmethod
    def undo(cls, recipe: dict) -> str:
        if recipe.get("existed"):
            return f"{recipe['path']} was there before the drill: left as it was"
        Path(recipe["path"]).unlink(missing_ok=True)
        return f"removed {recipe['path']}"
