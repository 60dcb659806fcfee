"""`udp.*` faults: impairments on a UDP relay in a carrier path (SIP and RTP over UDP).

udp.latency    latency_ms (+ jitter_ms)       udp.loss       ratio
udp.reorder    ratio, reorder_gap_ms           udp.duplicate  ratio
udp.rate       rate_kbps (policer)             udp.blackhole  (cut the path)

Each adds one named toxic through the relay's control channel (the target's
`relay:` address); rollback removes exactly that toxic, by name.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.base import FaultError, Injector, register
from harness.scenario.inventory import split_address


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


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream: str = Field("both", pattern="^(upstream|downstream|both)$")
    toxicity: float = Field(1.0, ge=0, le=1)


class LatencyParams(_Common):
    latency_ms: float = Field(gt=0, le=60000)
    jitter_ms: float = Field(0, ge=0, le=60000)


class RatioParams(_Common):
    ratio: float = Field(gt=0, le=1)


class ReorderParams(RatioParams):
    reorder_gap_ms: float = Field(40, ge=0, le=10000)


class RateParams(_Common):
    rate_kbps: float = Field(gt=0)
    burst_bytes: int = Field(3000, ge=0)


class _UdpFault(Injector):
    toxic_type = ""

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
        return f"{self.toxic_type} on the UDP relay of {self.target.name} ({attrs}); " \
               "rollback: remove that toxic"

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


def _family(type_name: str, toxic: str, params: type[BaseModel], doc: str) -> type[Injector]:
    cls = type(f"Udp{toxic.title()}", (_UdpFault,),
               {"type": type_name, "toxic_type": toxic, "Params": params, "__doc__": doc})
    return register(cls)


_family("udp.latency", "latency", LatencyParams, "Delay datagrams by latency_ms ± jitter_ms.")
_family("udp.loss", "loss", RatioParams, "Drop a share `ratio` of datagrams at random.")
_family("udp.reorder", "reorder", ReorderParams, "Hold back a share of datagrams so they arrive late.")
_family("udp.duplicate", "duplicate", RatioParams, "Send a share of datagrams twice.")
_family("udp.rate", "rate", RateParams, "Cap the rate; datagrams above it are dropped.")
_family("udp.blackhole", "blackhole", _Common, "Drop every datagram: the path is cut.")
