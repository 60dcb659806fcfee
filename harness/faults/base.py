"""The injector protocol and the registry that maps scenario `type:` strings to injectors.

The registry names no family: each module registers its own types when the
`hotline_drill.faults` entry point imports it (ops/plugins.py).

An injector is built from a fault spec and the inventory entry it targets.
Before injecting, the runner journals `recipe()`: everything `undo(recipe)`
needs to roll the fault back, so a later `drill recover` (after the harness was
SIGKILLed) undoes it with the very same code path as a normal rollback.
"""
from __future__ import annotations

import difflib
import json
import signal
import socket
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from harness.ops import OpsError, plugins
from harness.scenario.inventory import InventoryEntry, split_address

REGISTRY: dict[str, type["Injector"]] = {}


class FaultError(OpsError):
    """A fault could not be injected, verified or rolled back."""


def _known_signal(v: str) -> str:
    name = v.upper() if v.upper().startswith("SIG") else "SIG" + v.upper()
    if name not in signal.Signals.__members__:  # SIG_SETMASK and SIG_IGN are constants, not signals
        raise ValueError(f"unknown signal {v!r}; use e.g. SIGKILL, SIGTERM, SIGSEGV")
    return name


SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def size_bytes(v) -> int:
    """`256m`, `1g`, `512k`, `16MiB`, `4096` -> bytes (the sizes stress and limit faults take)."""
    text = str(v).strip().lower().removesuffix("ib").removesuffix("b") or "0"
    num, unit = text.rstrip("kmg"), text[len(text.rstrip("kmg")):]
    try:
        return int(float(num) * SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise ValueError(f"{v!r} is not a size (write e.g. 64m, 1g, 512k)") from None


SignalName = Annotated[str, AfterValidator(_known_signal)]  # "kill", "SIGKILL" -> "SIGKILL"


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Injector:
    """Base of every injector. Subclasses set `type`, `Params`, and implement the four steps."""

    type: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    # True for injectors that run what the scenario says (`command`): what they touch is
    # not the target's handles, so the allowlist cannot vouch for it; the dry run says so
    acts_outside_inventory: ClassVar[bool] = False

    def __init__(self, fault_id: str, target: InventoryEntry, params: BaseModel):
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

    def recipe_after_inject(self) -> dict[str, Any]:
        """Facts only injecting reveals (a flood's pid), for `undo`; the runner journals them
        as an amendment to the recipe right after `inject` returns. Most faults have none."""
        return {}

    def verify(self) -> bool:
        """True once the fault has really taken effect (checked from outside)."""
        raise NotImplementedError

    def took_effect_at(self) -> float | None:
        """When the fault took effect by the target's own record, where it keeps one (the
        Docker engine's exit time of a killed container), asked after `verify`. The fault's
        window opens then rather than when `inject` returned: a kill bites at once, while the
        engine may take half a second more to answer."""
        return None

    @classmethod
    def undo(cls, recipe: dict[str, Any]) -> str:
        """Roll back from a recipe alone; idempotent. Returns what it did (an `Undone`
        where the target keeps its own record of when the fault ended)."""
        raise NotImplementedError


class Undone(str):
    """What `undo` did, with when the fault ended by the target's own record (`at`). The
    window then closes at that moment, not when a busy harness got round to noticing that
    undo returned: under load that notice can come 100 ms late, and a window of 1.1 s for
    a blackout of 1 s is the harness misreporting its own fault."""

    at: float | None

    def __new__(cls, note: str, at: float | None = None) -> "Undone":
        self = super().__new__(cls, note)
        self.at = at
        return self


def register(cls: type[Injector]) -> type[Injector]:
    """Class decorator: the injector answers to its `type:` name in scenarios."""
    known = REGISTRY.get(cls.type)
    if known is not None and known is not cls:
        raise FaultError(f"fault type {cls.type!r} is registered twice: by {known.__module__}."
                         f"{known.__qualname__} and by {cls.__module__}.{cls.__qualname__}")
    REGISTRY[cls.type] = cls
    return cls


def lookup(type_name: str) -> type[Injector]:
    load_families()
    if type_name not in REGISTRY:
        close = difflib.get_close_matches(type_name, REGISTRY, n=1)
        hint = f"did you mean '{close[0]}'?" if close else \
            f"known types: {', '.join(sorted(REGISTRY))}"
        raise KeyError(f"unknown fault type '{type_name}' ({hint})")
    return REGISTRY[type_name]


def load_families() -> None:
    """Import every fault family installed under the `hotline_drill.faults` entry point
    (the built-ins and any other package's); each module registers its own types."""
    plugins.load(plugins.FAULT_FAMILIES)


def relay_command(control: str, req: dict, token_file: str | None = None,
                  timeout: float = 2.0) -> dict:
    """One request/reply on a relay's JSON-lines control channel (with its token, if any)."""
    if token_file:
        try:
            req = {**req, "token": Path(token_file).read_text().strip()}
        except OSError as exc:
            raise FaultError(f"relay token {token_file} unreadable: {exc.strerror}") from exc
    try:
        with socket.create_connection(split_address(control), timeout=timeout) as s:
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as exc:
        raise FaultError(f"relay control channel {control} unreachable: {exc}") from exc
    reply = json.loads(buf or b"{}")
    if not reply.get("ok"):
        raise FaultError(f"relay {control} refused {req.get('op')}: {reply.get('error')}")
    return reply


class RelayFault(Injector):
    """A fault that is one named rule on a relay's control channel (the target's `relay:`):
    the UDP relays' toxics (udp.*), the DNS relay's rules (dns.*)."""
    toxic_type = ""
    relay_kind = "UDP relay"

    def _control(self) -> str:
        control = getattr(self.target, "relay", None)
        if not control:
            raise FaultError(f"{self.target.name} has no `relay:` control address in the inventory")
        return control

    def _toxic(self) -> dict:
        return {"name": f"drill-{self.fault_id}", "type": self.toxic_type, **self.params.model_dump()}

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.params.model_dump().items())
        return f"{self.toxic_type} on the {self.relay_kind} of {self.target.name} ({attrs}); " \
               "rollback: remove that rule"

    def _token(self) -> str | None:
        return getattr(self.target, "relay_token_file", None)

    def recipe(self) -> dict:
        return {"control": self._control(), "token_file": self._token(),
                "name": self._toxic()["name"], "target": self.target.name}

    def inject(self) -> None:
        relay_command(self._control(), {"op": "add", "toxic": self._toxic()}, self._token())

    def verify(self) -> bool:
        listed = relay_command(self._control(), {"op": "list"}, self._token())["toxics"]
        return any(t["name"] == self._toxic()["name"] for t in listed)

    @classmethod
    def undo(cls, recipe: dict) -> str:
        reply = relay_command(recipe["control"], {"op": "remove", "name": recipe["name"]},
                              recipe.get("token_file"))
        return f"{recipe['target']}: toxic {recipe['name']} " + \
            ("removed" if reply.get("removed") else "was already gone")


def relay_family(type_name: str, toxic: str, params: type[BaseModel], doc: str,
                 base: type[RelayFault] = RelayFault) -> type[Injector]:
    """One fault type of a relay family (`base`: udp.*, or dns.* on the DNS relay)."""
    prefix = type_name.split(".")[0].title()
    cls = type(f"{prefix}{toxic.title()}", (base,),
               {"type": type_name, "toxic_type": toxic, "Params": params, "__doc__": doc,
                "__module__": base.__module__})
    return register(cls)
