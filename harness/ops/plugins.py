"""Plug-in registries filled through entry points, as pytest fills `pytest11`.

Three groups, all declared in pyproject.toml for the built-ins and open to any
installed package:

- `hotline_drill.faults`: each entry names a module of injectors; importing it
  registers every `type:` it defines (`faults/base.py: register`).
- `hotline_drill.targets`: each entry names a target object; its name is what a
  scenario's `target:` says (`runner/targets.py` states the contract).
- `hotline_drill.engines`: each entry names a load engine's `EngineKind`, what a scenario's
  `load.engine:` says, with the abilities the plan checks (`load/engines.py`).

Nothing here knows a family or a target by name: a new one is a new package.
"""
from __future__ import annotations

import functools
from importlib.metadata import entry_points

from harness.ops import OpsError

FAULT_FAMILIES = "hotline_drill.faults"
TARGETS = "hotline_drill.targets"
ENGINES = "hotline_drill.engines"


class PluginError(OpsError):
    """An installed plug-in could not be loaded."""


@functools.cache
def load(group: str) -> dict[str, object]:
    """Every entry of `group`, loaded once: {entry name: the object it names}."""
    found: dict[str, object] = {}
    for ep in entry_points(group=group):
        where = f"{ep.name} = {ep.value}" + (f" (package {ep.dist.name})" if ep.dist else "")
        if ep.name in found:
            raise PluginError(f"two plug-ins in {group} are named {ep.name!r}; the second is {where}")
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party package must say which one it is
            raise PluginError(f"the {group} plug-in {where} cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from exc
    if not found:
        raise PluginError(f"no {group} plug-ins are installed, not even the built-in ones; "
                          "install the package (pip install -e . from a checkout)")
    return found
