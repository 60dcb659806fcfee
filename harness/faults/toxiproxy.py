"""`toxiproxy.*` faults: a real Toxiproxy server on a TCP path (SIP over TCP, HTTP, databases).

toxiproxy.down         disable the proxy (connections refused); rollback enables it
toxiproxy.<toxic>      latency, bandwidth, timeout, reset_peer, slow_close, slicer,
                       limit_data — with `stream`, `toxicity` and the toxic's attributes;
                       rollback removes exactly that toxic, by name

The target's `toxiproxy:` says which server (`api`) and which proxy. Calls go
through toxiproxy-python (`ops/toxiproxy_api.py`: one server per call, no
leaked state between targets).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.base import FaultError, Injector, register
from harness.ops.toxiproxy_api import proxy as _proxy

TOXIC_ATTRIBUTES = {  # Toxiproxy's own attribute names, per toxic type
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slow_close": {"delay": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}


class DownParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToxicParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    stream: str = Field("downstream", pattern="^(upstream|downstream)$")
    toxicity: float = Field(1.0, ge=0, le=1)


class _ToxiproxyFault(Injector):

    def _ref(self) -> tuple[str, str]:
        ref = getattr(self.target, "toxiproxy", None)
        if not ref:
            raise FaultError(f"{self.target.name} has no `toxiproxy:` (api, proxy) in the inventory")
        return ref.api, ref.proxy

    def prepare(self) -> None:
        _proxy(*self._ref())  # imports the client and reaches the proxy before the load starts


@register
class ToxiproxyDown(_ToxiproxyFault):
    """Disable the proxy: new connections are refused, open ones closed."""

    type = "toxiproxy.down"
    Params = DownParams

    def describe(self) -> str:
        return f"disable Toxiproxy proxy {self._ref()[1]} of {self.target.name}; rollback: enable it"

    def recipe(self) -> dict:
        api, proxy = self._ref()
        return {"api": api, "proxy": proxy, "action": "enable", "target": self.target.name}

    def inject(self) -> None:
        _proxy(*self._ref()).disable()

    def verify(self) -> bool:
        return _proxy(*self._ref()).enabled is False

    @classmethod
    def undo(cls, recipe: dict) -> str:
        _proxy(recipe["api"], recipe["proxy"]).enable()
        return f"{recipe['target']}: proxy {recipe['proxy']} enabled"


class _ToxicFault(_ToxiproxyFault):
    toxic = ""
    Params = ToxicParams

    def _attributes(self) -> dict:
        allowed = TOXIC_ATTRIBUTES[self.toxic]
        extra = dict(self.params.model_extra or {})
        unknown = set(extra) - set(allowed)
        if unknown:
            raise FaultError(f"{self.type}: unknown attribute(s) {', '.join(sorted(unknown))}; "
                             f"{self.toxic} takes {', '.join(allowed)}")
        return {**allowed, **extra}

    def _name(self) -> str:
        return f"drill-{self.fault_id}"

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self._attributes().items())
        return f"Toxiproxy {self.toxic} ({attrs}, {self.params.stream}, toxicity " \
               f"{self.params.toxicity:g}) on {self._ref()[1]} of {self.target.name}; " \
               "rollback: remove that toxic"

    def recipe(self) -> dict:
        api, proxy = self._ref()
        return {"api": api, "proxy": proxy, "action": "remove_toxic", "toxic": self._name(),
                "target": self.target.name}

    def inject(self) -> None:
        _proxy(*self._ref()).add_toxic(name=self._name(), type=self.toxic,
                                       stream=self.params.stream, toxicity=self.params.toxicity,
                                       attributes=self._attributes())

    def verify(self) -> bool:
        return self._name() in _proxy(*self._ref()).toxics()

    @classmethod
    def undo(cls, recipe: dict) -> str:
        proxy = _proxy(recipe["api"], recipe["proxy"])
        if recipe["toxic"] not in proxy.toxics():
            return f"{recipe['target']}: toxic {recipe['toxic']} was already gone"
        proxy.destroy_toxic(recipe["toxic"])
        return f"{recipe['target']}: toxic {recipe['toxic']} removed"


for _toxic in TOXIC_ATTRIBUTES:
    register(type(f"Toxiproxy{_toxic.title().replace('_', '')}", (_ToxicFault,),
                  {"type": f"toxiproxy.{_toxic}", "toxic": _toxic,
                   "__doc__": f"Toxiproxy's {_toxic} toxic on the target's proxy."}))
