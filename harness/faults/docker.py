"""`docker.*` faults through the Docker Engine API (the docker SDK).

docker.kill        send `signal:` (default SIGKILL)        rollback: start
docker.stop        stop with a `grace:` period               rollback: start
docker.pause       freeze (cgroup freezer)                   rollback: unpause
docker.restart     restart (a bounce)                        rollback: wait until healthy
docker.disconnect  detach from `network:`                    rollback: reconnect (same aliases)

The target's `docker:` selects containers by `name`, `label` or compose
`service` (with optional `project`); `select` ALL, COUNT (`count`) or
PERCENT (`percent`) picks among them, at random from `seed`. The choice is
made once, journaled by container id, and every rollback waits until each
container runs again and, if it has a healthcheck, reports healthy.
"""
from __future__ import annotations

import math
import random
import time

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.faults.base import FaultError, Injector, SignalName, register
from harness.ops.docker_api import client, matching, wait_healthy

class Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    select: str = Field("all", pattern="^(all|count|percent)$")
    count: int | None = Field(None, ge=1)
    percent: float | None = Field(None, gt=0, le=100)
    seed: int | None = None

    @model_validator(mode="after")
    def _needs_number(self):
        if self.select == "count" and self.count is None:
            raise ValueError("select: count needs `count:`")
        if self.select == "percent" and self.percent is None:
            raise ValueError("select: percent needs `percent:`")
        return self


class KillParams(Selection):
    signal: SignalName = "SIGKILL"


class StopParams(Selection):
    grace: int = Field(5, ge=0, le=300)


class DisconnectParams(Selection):
    network: str


def choose(ids: list[str], sel: Selection) -> list[str]:
    """The containers a fault acts on: all, or a seeded random COUNT / PERCENT of them."""
    ids = sorted(ids)
    if sel.select == "all":
        return ids
    n = sel.count if sel.select == "count" else math.ceil(len(ids) * sel.percent / 100)
    return sorted(random.Random(sel.seed).sample(ids, min(n, len(ids))))


def finished_at(state: dict) -> float | None:
    """The engine's FinishedAt (RFC 3339, nanoseconds) as epoch seconds; None if not set."""
    from datetime import datetime
    text = state.get("FinishedAt") or ""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    at = datetime.fromisoformat(head + "+00:00").timestamp()
    return at + float("0." + (frac or "0"))


class _DockerFault(Injector):
    action = ""
    rollback_action = "start"

    def _ids(self) -> list[str]:
        if not hasattr(self, "_chosen"):
            ref = getattr(self.target, "docker", None)
            if ref is None:
                raise FaultError(f"{self.target.name} has no `docker:` selector in the inventory")
            running = [x.id for x in matching(ref) if x.status == "running"]
            if not running:
                raise FaultError(f"no running container matches {self.target.name}'s `docker:` "
                                 "selector; a fault needs a live target")
            self._chosen = choose(running, self.params)
        return self._chosen

    def describe(self) -> str:
        sel = self.params
        which = {"all": "all", "count": str(sel.count), "percent": f"{sel.percent}%"}[sel.select]
        return f"docker {self.action} of {which} container(s) of {self.target.name}; " \
               f"rollback: {self.rollback_action} and wait until healthy"

    def recipe(self) -> dict:
        return {"action": self.rollback_action, "containers": self._ids(), "target": self.target.name}

    def prepare(self) -> None:
        try:
            client().ping()
        except Exception as exc:
            raise FaultError(f"{self.target.name}: the Docker engine does not answer: {exc} "
                             "(start it: lab/dockerd-up.sh, or check DOCKER_HOST)") from exc

    def verify(self) -> bool:
        c = client()
        deadline = time.time() + 5
        while time.time() < deadline:
            states = [c.api.inspect_container(i)["State"] for i in self._ids()]
            if all(self._took(s) for s in states):
                return True
            time.sleep(0.05)
        return False

    def _took(self, state: dict) -> bool:
        return state["Status"] in ("exited", "dead")

    def _act(self, api, cid: str) -> None:
        raise NotImplementedError

    def took_effect_at(self) -> float | None:
        """For a kill or a stop: when the first chosen container exited, by the engine's own
        record (State.FinishedAt): from then on the target is short of a part. (A SIGKILL
        bites when it is sent; see DockerKill.)"""
        if self.rollback_action != "start":
            return None
        c = client()
        ends = [finished_at(c.api.inspect_container(i)["State"]) for i in self._ids()]
        return None if None in ends or not ends else min(ends)

    def inject(self) -> None:
        """Every chosen container at once, as a site's power loss takes them: one after the
        other, the last of a site's five would die half a second after the first."""
        from concurrent.futures import ThreadPoolExecutor
        api = client().api
        ids = self._ids()
        self._sent_at = time.time()
        with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
            for done in [pool.submit(self._act, api, cid) for cid in ids]:
                done.result()

    @classmethod
    def undo(cls, recipe: dict) -> str:
        """Every container is put back first, then each is waited for: one that does not come
        back healthy never keeps the others down (a whole site is many containers)."""
        c = client()
        done, failed, acted = [], [], []
        from docker.errors import NotFound
        for cid in recipe["containers"]:
            try:
                state = c.api.inspect_container(cid)["State"]
            except NotFound:  # removed since (by hand, or by `drill lab down`): nothing to undo
                done.append(f"{cid[:12]} no longer exists, nothing to undo")
                continue
            except Exception as exc:
                failed.append(f"container {cid[:12]} cannot be inspected; cannot roll back: {exc}")
                continue
            try:
                if recipe["action"] == "unpause" and state.get("Paused"):
                    c.api.unpause(cid)
                elif recipe["action"] == "start" and state["Status"] != "running":
                    c.api.start(cid)
                elif recipe["action"] == "reconnect":
                    nets = c.api.inspect_container(cid)["NetworkSettings"]["Networks"]
                    if recipe["network"] not in nets:
                        aliases = (recipe.get("aliases") or {}).get(cid) or None
                        address = (recipe.get("addresses") or {}).get(cid) or None
                        c.api.connect_container_to_network(cid, recipe["network"], aliases=aliases,
                                                           ipv4_address=address)
                acted.append(cid)
            except Exception as exc:
                failed.append(f"container {cid[:12]}: {recipe['action']} failed: {exc}")
        for cid in acted:
            try:
                done.append(f"{cid[:12]} {wait_healthy(cid)}")
            except Exception as exc:
                failed.append(str(exc))
        if failed:
            raise FaultError(f"{recipe['target']}: {recipe['action']}: " + "; ".join(failed))
        return f"{recipe['target']}: {recipe['action']}: " + ", ".join(done)


@register
class DockerKill(_DockerFault):
    type = "docker.kill"
    Params = KillParams
    action = "kill"

    def _act(self, api, cid: str) -> None:
        api.kill(cid, signal=self.params.signal)

    def took_effect_at(self) -> float | None:
        """SIGKILL cannot be caught: the container is gone when the signal is sent, while the
        engine records its exit (FinishedAt) some 0.1-0.3 s later. Other signals: the exit."""
        if self.params.signal == "SIGKILL":
            return getattr(self, "_sent_at", None)
        return super().took_effect_at()


@register
class DockerStop(_DockerFault):
    type = "docker.stop"
    Params = StopParams
    action = "stop"

    def _act(self, api, cid: str) -> None:
        api.stop(cid, timeout=self.params.grace)


@register
class DockerPause(_DockerFault):
    type = "docker.pause"
    Params = Selection
    action = "pause"
    rollback_action = "unpause"

    def _took(self, state: dict) -> bool:
        return bool(state.get("Paused"))

    def _act(self, api, cid: str) -> None:
        api.pause(cid)


@register
class DockerRestart(_DockerFault):
    type = "docker.restart"
    Params = StopParams
    action = "restart"
    rollback_action = "wait"

    def _act(self, api, cid: str) -> None:
        api.restart(cid, timeout=self.params.grace)

    def verify(self) -> bool:
        return all(wait_healthy(cid) for cid in self._ids())


@register
class DockerDisconnect(_DockerFault):
    type = "docker.disconnect"
    Params = DisconnectParams
    action = "disconnect"
    rollback_action = "reconnect"

    def _ids(self) -> list[str]:
        """The chosen containers that are on the network: a site's containers are not all
        on each of its networks (its PBX nodes are not on the WAN)."""
        chosen = super()._ids()
        if not getattr(self, "_on_network", False):
            c = client()
            on = [cid for cid in chosen
                  if self.params.network in c.api.inspect_container(cid)["NetworkSettings"]["Networks"]]
            if not on:
                raise FaultError(f"no container of {self.target.name} is on network "
                                 f"{self.params.network!r}")
            self._chosen, self._on_network = on, True
        return self._chosen

    def recipe(self) -> dict:
        c = client()
        aliases, addresses = {}, {}
        for cid in self._ids():
            net = c.api.inspect_container(cid)["NetworkSettings"]["Networks"][self.params.network]
            aliases[cid] = [a for a in (net.get("Aliases") or []) if not cid.startswith(a)]
            # a fixed address (a lab's, a VIP's peer) comes back as it was
            addresses[cid] = (net.get("IPAMConfig") or {}).get("IPv4Address") or ""
        return {**super().recipe(), "network": self.params.network, "aliases": aliases,
                "addresses": addresses}

    def _took(self, state: dict) -> bool:
        return True  # checked on the network below

    def verify(self) -> bool:
        c = client()
        return all(self.params.network not in
                   c.api.inspect_container(cid)["NetworkSettings"]["Networks"] for cid in self._ids())

    def _act(self, api, cid: str) -> None:
        api.disconnect_container_from_network(cid, self.params.network)
