"""Compile a scenario into a runnable plan: its target resolved, every fault bound to an injector.

Everything is checked before anything runs; all problems are collected and
reported together as `file:line: message (hint)`; the CLI turns an InputError
into exit code 2 with nothing injected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.faults.base import FaultError, Injector, load_families, lookup
from harness.load.engines import EngineKind, all_engines, engine_named
from harness.ops.plugins import PluginError
from harness.runner.targets import Target, target_named
from harness.scenario.inventory import InventoryEntry, TargetInventory, handles
from harness.scenario.load import read_inventory, read_scenario
from harness.scenario.model import FaultSpec, Scenario
from harness.scenario.yamlload import InputError, line_of, line_problems


@dataclass
class PlannedFault:
    """A fault spec resolved to its injector class, validated params and inventory entry."""

    spec: FaultSpec
    fault_id: str
    injector: type[Injector]
    params: BaseModel
    target: InventoryEntry

    @property
    def end(self) -> float | None:
        # to the microsecond: 0.1 + 0.2 is 0.30000000000000004, and a rollback must not sort
        # after an inject written for the same instant (0.3)
        return None if self.spec.duration is None else round(self.spec.at + self.spec.duration, 6)

    def build(self) -> Injector:
        return self.injector(self.fault_id, self.target, self.params)


@dataclass
class Drill:
    """Everything a run needs, all checked: the scenario, its target and its faults."""

    path: Path
    scenario: Scenario
    inventory: TargetInventory
    faults: list[PlannedFault]
    target: Target | None = None          # the target plug-in, when `target:` names one
    target_options: BaseModel | None = None  # its validated `sandbox:` options
    notes: list[str] = field(default_factory=list)  # `file:line: ...` worth knowing, not errors

    @property
    def engine(self) -> EngineKind:
        """The load engine the scenario names (checked when the plan was built)."""
        return engine_named(self.scenario.load.engine)


def target_options(scenario: Scenario, target: Target | None, path: Path,
                   lines: dict) -> BaseModel | None:
    """The scenario's `sandbox:` options, validated by the target that takes them."""
    given = scenario.sandbox
    takes = target.Options if target is not None else None
    if given is not None and takes is None:
        raise InputError([f"{path}:{line_of(lines, ('sandbox',))}: sandbox: these options build "
                          f"the practice hotline, but the target is '{scenario.target}' "
                          "(hint: remove `sandbox:` or set `target: sandbox`)"])
    if takes is None or given is None:
        return None
    try:
        return takes.model_validate(given)
    except ValidationError as err:
        raise InputError(line_problems(err, path, lines, ("sandbox",))) from None


def load_inventory(ref: str, base: Path, target: Target | None = None,
                   options: BaseModel | None = None) -> TargetInventory:
    """A target plug-in's inventory, or the inventory YAML at `ref` (relative to `base`)."""
    if target is not None:
        return target.inventory(options)
    return read_inventory((base / ref) if not Path(ref).is_absolute() else Path(ref))


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
        problems.extend(line_problems(err, path, lines, loc))
        return None
    odd = [k for k, v in params.model_dump().items() if isinstance(v, float) and not math.isfinite(v)]
    if odd:  # "nan" written as a string slips past YAML's own number check
        problems.append(f"{where(odd[0])}: faults.{i}.{odd[0]}: not a finite number")
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
    own = handles(target)
    others = [x for x in [*inv.nodes, *inv.entry_points, *inv.links] if x.name not in inv.allowlist]
    for other in others:
        shared = sorted(own & handles(other))
        if shared:
            kind, value = shared[0]
            problems.append(f"{where('target')}: faults.{i}.target: '{spec.target}' acts on "
                            f"{kind} {value}, which is also '{other.name}''s, and '{other.name}' "
                            "is not on the allowlist; refusing to touch it (hint: give each its "
                            "own handle, or allowlist both)")
            return None
    if spec.at >= scenario.duration:
        problems.append(f"{where('at')}: faults.{i}.at: {spec.at:g}s is not before the end of "
                        f"the drill ({scenario.duration:g}s)")
    end = spec.at + (spec.duration or 0)
    if end > scenario.duration:
        problems.append(f"{where('duration')}: faults.{i}.duration: the fault would end at "
                        f"{end:g}s, after the drill ({scenario.duration:g}s)")
    planned = PlannedFault(spec, spec.id or f"{spec.type}@{spec.target}#{i + 1}", injector,
                           params, target)
    try:  # what it acts on, said now: a target without it (a link with no proxy) is refused
        planned.build().describe()
    except FaultError as exc:
        problems.append(f"{where('target')}: faults.{i}.target: {spec.type} cannot act on "
                        f"'{spec.target}': {exc} (hint: pick a target that has it, or another "
                        "fault type; README \"Fault injectors\")")
        return None
    return planned


def load_drill(path: Path | str, target_override: str | None = None) -> Drill:
    """Parse and check a scenario file and its target; raise InputError listing every problem."""
    path = Path(path)
    scenario, lines = read_scenario(path)
    if target_override:
        scenario.target = target_override
    try:  # the installed plug-ins, loaded once: a broken one is named here, nothing injected
        load_families()
        target = target_named(scenario.target)
        engine = _check_engine(scenario, path, lines)
    except PluginError as exc:
        raise InputError([f"{path}: {exc}"]) from None
    options = target_options(scenario, target, path, lines)
    try:
        inv = load_inventory(scenario.target, path.parent, target, options)
    except InputError as exc:  # say it on the scenario's line too: that is where the fix goes
        raise InputError([f"{path}:{line_of(lines, ('target',))}: target: '{scenario.target}' "
                          "is not a usable target inventory (hint: 'sandbox', 'lab', 'lab-dr' "
                          "or the path of an inventory YAML, README \"Target inventory\")",
                          *exc.problems]) from None
    problems: list[str] = []
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
    problems += _engine_abilities(engine, inv.carriers(scenario.load.carriers),
                                  f"{path}:{line_of(lines, ('load', 'engine'))}")
    if scenario.load.journey is not None and not engine.journey:
        able = ", ".join(n for n, k in all_engines().items() if k.journey)
        problems.append(f"{path}:{line_of(lines, ('load', 'journey'))}: load.engine: "
                        f"{engine.name} cannot run a caller's journey (hint: use engine: {able})")
    if scenario.load.dial == "agents" and not engine.dial_agents:
        able = ", ".join(n for n, k in all_engines().items() if k.dial_agents)
        problems.append(f"{path}:{line_of(lines, ('load', 'dial'))}: load.engine: "
                        f"{engine.name} cannot dial the agents (hint: use engine: {able})")
    if scenario.load.journey is not None:
        blind = [e.name for e in inv.carriers(scenario.load.carriers) if not e.agent_marker]
        if blind:
            problems.append(f"{path}:{line_of(lines, ('load', 'journey'))}: load.journey waits "
                            f"for an agent's marker, and entry point(s) {', '.join(blind)} of "
                            f"'{inv.name}' declare none (hint: set agent_marker: the key the "
                            "contact centre's test agents answer with, in the inventory)")
    cc = getattr(options, "contact_centre", None)
    if cc is not None and scenario.agents is None and \
            any(g.registered for g in cc.groups.values()):
        problems.append(f"{path}:{line_of(lines, ('sandbox', 'contact_centre'))}: a group of "
                        "registered phones is served by the scenario's agents, and it has none "
                        "(hint: add `agents: {count: N}`)")
    if scenario.agents is not None and inv.registrar is None:
        problems.append(f"{path}:{line_of(lines, ('agents',))}: agents: target '{inv.name}' "
                        "names no registrar for the agents' phones (hint: give the inventory "
                        "`registrar: {address: host:port, domain: ...}`)")
    if problems:
        raise InputError(problems)
    return Drill(path, scenario, inv, planned, target, options, shift_notes(scenario, path, lines))


# what an entry point may need of the engine that loads it: (ability, needs it, what the
# engine cannot do, the hint's way out)
_NEEDS = (
    ("fallback", lambda e: bool(e.fallback), "cannot fail over to an entry point's fallback "
     "addresses", "or leave fallback out of the inventory"),
    ("auth", lambda e: bool(e.auth), "cannot answer digest challenges (`auth:`)",
     "or leave auth out of the inventory"),
    ("tls", lambda e: e.transport == "tls", "cannot speak SIP over TLS here (transport tls)",
     "or load.carriers without them"),
    ("srtp", lambda e: e.srtp != "off", "cannot offer SRTP (`srtp: offer` or `require`)",
     "or srtp: off"),
    ("dns", lambda e: e.located_by_dns, "cannot locate an entry point by DNS (`domain`)",
     "or give it a literal `address`"),
)


def _engine_abilities(engine: EngineKind, entries, where: str) -> list[str]:
    """What the scenario's entry points need that its engine cannot do, asked of the engine."""
    out = []
    for ability, needs, cannot, way_out in _NEEDS:
        names = [e.name for e in entries if needs(e)]
        if names and not getattr(engine, ability):
            able = ", ".join(n for n, k in all_engines().items() if getattr(k, ability))
            out.append(f"{where}: load.engine: {engine.name} {cannot}: entry point(s) "
                       f"{', '.join(names)} (hint: use engine: {able}, {way_out})")
    return out


def _check_engine(scenario: Scenario, path: Path, lines: dict) -> EngineKind:
    """The registered engine `load.engine` names, asked what it can do: one without media
    places no RTP (rtp_share 0, and an rtp_share set above 0 is an error)."""
    load = scenario.load
    engines = all_engines()
    engine = engines.get(load.engine)
    if engine is None:
        raise InputError([f"{path}:{line_of(lines, ('load', 'engine'))}: load.engine: "
                          f"'{load.engine}' is not an installed load engine (known: "
                          f"{', '.join(sorted(engines))})"])
    if not engine.media:
        if "rtp_share" in load.model_fields_set and load.rtp_share > 0:
            media = ", ".join(n for n, k in engines.items() if k.media)
            raise InputError([f"{path}:{line_of(lines, ('load',))}: load: engine {engine.name} "
                              "sends no RTP, so media cannot be measured with it: set rtp_share: "
                              f"0% (or use engine: {media} for media quality)"])
        load.rtp_share = 0.0
    return engine


def shift_notes(scenario: Scenario, path: Path, lines: dict) -> list[str]:
    """Faults shorter than the traffic-shift target: a shift slower than the fault cannot be
    seen, so such a drill tells "shifted within the fault" from "never", and no more."""
    target = scenario.sla.traffic_shift
    if target is None:
        return []
    return [f"{path}:{line_of(lines, ('faults', i, 'duration'))}: faults.{i}.duration: "
            f"{spec.duration:g}s is shorter than the traffic_shift target ({target:g}s): an SBC "
            f"that would shift after {spec.duration:g}s, within the target, reads 'never' "
            f"(hint: a fault of {target:g}s or more, or set sla.traffic_shift to "
            f"{spec.duration:g}s or less to judge what this fault can show)"
            for i, spec in enumerate(scenario.faults)
            if spec.duration is not None and spec.duration < target]
