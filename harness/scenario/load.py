"""Load a scenario and its target, checking everything before anything runs.

All problems are collected and reported together as `file:line: message (hint)`;
the CLI turns an InputError into exit code 2 with nothing injected.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.faults.base import Injector, lookup
from harness.scenario.inventory import TargetInventory
from harness.scenario.model import FaultSpec, Scenario
from harness.scenario.yamlload import InputError, line_of, load_yaml

@dataclass
class PlannedFault:
    """A fault spec resolved to its injector class, validated params and inventory entry."""

    spec: FaultSpec
    fault_id: str
    injector: type[Injector]
    params: BaseModel
    target: object

    @property
    def end(self) -> float | None:
        return None if self.spec.duration is None else self.spec.at + self.spec.duration

    def build(self) -> Injector:
        return self.injector(self.fault_id, self.target, self.params)


@dataclass
class Drill:
    """Everything a run needs, all checked: the scenario, its target and its faults."""

    path: Path
    scenario: Scenario
    inventory: TargetInventory
    faults: list[PlannedFault]


def _messages(err: ValidationError, path: Path, lines: dict, prefix: tuple = ()) -> list[str]:
    out = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        where = ".".join(str(x) for x in loc) or "(top)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}' (hint: check its spelling; README lists every key)"
        elif e["type"] == "missing":
            msg = f"missing required key '{loc[-1]}'"
        out.append(f"{path}:{line_of(lines, loc)}: {where}: {msg}")
    return out


def load_inventory(ref: str, base: Path, sandbox: dict | None = None) -> TargetInventory:
    """`sandbox` (built with the scenario's `sandbox:` options) or a path (relative to
    the scenario's folder) to a target inventory YAML."""
    if ref == "sandbox":
        from harness.lab.sandbox import SandboxConfig, inventory
        return inventory(SandboxConfig.for_drill(sandbox))
    if ref == "lab":
        from harness.lab.containers import inventory_path
        path = inventory_path()
        if not path.exists():
            raise InputError([f"target 'lab': the container lab is not up "
                              f"(hint: run `drill lab up --docker` first)"])
        return load_inventory(str(path), base)
    path = (base / ref) if not Path(ref).is_absolute() else Path(ref)
    if not path.exists():
        raise InputError([f"{path}: target inventory not found "
                          f"(hint: use 'sandbox' or a path to an inventory YAML)"])
    data, lines = load_yaml(path)
    try:
        return TargetInventory.model_validate(data)
    except ValidationError as err:
        raise InputError(_messages(err, path, lines)) from None


def _check_fault(i: int, spec: FaultSpec, scenario: Scenario, inv: TargetInventory,
                 path: Path, lines: dict, problems: list[str]) -> PlannedFault | None:
    loc = ("faults", i)
    where = lambda key=None: f"{path}:{line_of(lines, loc + ((key,) if key else ()))}"  # noqa: E731
    try:
        injector = lookup(spec.type)
    except KeyError as exc:
        problems.append(f"{where('type')}: faults.{i}.type: {exc.args[0]}")
        return None
    try:
        params = injector.Params.model_validate(spec.params)
    except ValidationError as err:
        problems.extend(_messages(err, path, lines, loc))
        return None
    target = inv.find(spec.target)
    if target is None:
        known = ", ".join(x.name for x in [*inv.nodes, *inv.entry_points, *inv.links])
        problems.append(f"{where('target')}: faults.{i}.target: '{spec.target}' is not in "
                        f"target '{inv.name}' (known: {known})")
        return None
    if spec.target not in inv.allowlist:
        problems.append(f"{where('target')}: faults.{i}.target: '{spec.target}' is not on the "
                        f"allowlist of target '{inv.name}'; refusing to touch it "
                        "(hint: add it to `allowlist:` in the inventory if it is a drill target)")
        return None
    if spec.at >= scenario.duration:
        problems.append(f"{where('at')}: faults.{i}.at: {spec.at:g}s is not before the end of "
                        f"the drill ({scenario.duration:g}s)")
    end = spec.at + (spec.duration or 0)
    if end > scenario.duration:
        problems.append(f"{where('duration')}: faults.{i}.duration: the fault would end at "
                        f"{end:g}s, after the drill ({scenario.duration:g}s)")
    return PlannedFault(spec, spec.id or f"{spec.type}@{spec.target}#{i + 1}", injector, params,
                        target)


def load_drill(path: Path | str, target_override: str | None = None) -> Drill:
    """Parse and check a scenario file and its target; raise InputError listing every problem."""
    path = Path(path)
    data, lines = load_yaml(path)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise InputError(_messages(err, path, lines)) from None
    if target_override:
        scenario.target = target_override
    problems: list[str] = []
    if scenario.sandbox is not None and scenario.target != "sandbox":
        raise InputError([f"{path}:{line_of(lines, ('sandbox',))}: sandbox: these options build the "
                          f"practice hotline, but the target is '{scenario.target}' "
                          "(hint: remove `sandbox:` or set `target: sandbox`)"])
    inv = load_inventory(scenario.target, path.parent,
                         scenario.sandbox.model_dump() if scenario.sandbox else None)
    planned = []
    for i, spec in enumerate(scenario.faults):
        p = _check_fault(i, spec, scenario, inv, path, lines, problems)
        if p:
            planned.append(p)
    ids = [p.fault_id for p in planned]
    for p in planned:
        if ids.count(p.fault_id) > 1:
            problems.append(f"{path}:{line_of(lines, ('faults',))}: fault id '{p.fault_id}' "
                            "is used twice (hint: give each fault its own `id:`)")
            break
    carriers = {e.name for e in inv.entry_points}
    for c in scenario.load.carriers or []:
        if c not in carriers:
            problems.append(f"{path}:{line_of(lines, ('load', 'carriers'))}: load.carriers: "
                            f"'{c}' is not an entry point of '{inv.name}' "
                            f"(known: {', '.join(sorted(carriers))})")
    if problems:
        raise InputError(problems)
    return Drill(path, scenario, inv, planned)
