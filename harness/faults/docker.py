"""`docker.*` faults through the Docker Engine API (the docker SDK).

docker.kill        send `signal:` (default SIGKILL)        rollback: start
docker.stop        stop with a `grace:` period               rollback: start
docker.pause       freeze (cgroup freezer)                   rollback: unpause
docker.restart     restart (a bounce)                        rollback: wait until healthy
docker.disconnect  detach from `network:`                    rollback: reconnect (same aliases)
docker.limit       tighten `cpus:` and/or `memory:` (or       rollback: the limits it had (a
                   `headroom:` above its use now)            memory limit where it had none:
                                                             the machine's memory, as Docker
                                                             cannot remove one), started
                                                             again if the OOM killer stopped it

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

from harness.faults.base import FaultError, Injector, SignalName, register, size_bytes
from harness.ops import OpsError
from harness.ops.cgroups import group_of
from harness.ops.docker_api import client, container_pid, matching, wait_healthy

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


CPU_PERIOD = 100_000  # µs: the CFS period the quota is a share of (Docker's default)
DOCKER_MIN_MEMORY = 6 * 1024 ** 2  # the engine refuses a memory limit below 6 MiB


class LimitParams(Selection):
    cpus: float | None = Field(None, gt=0, le=64, description="cores the container may use "
                               "(0.2: a fifth of one), enforced by the CFS quota")
    memory: int | None = Field(None, ge=DOCKER_MIN_MEMORY, description="its memory limit "
                               "(64m, 1g); under cgroup v1 the kernel refuses one below what "
                               "the container uses now (it cannot reclaim it)")
    headroom: int | None = Field(None, gt=0, description="instead of memory: the limit is "
                                 "what the container uses now plus this (1m): its next "
                                 "growth, a surge or a leak, meets the OOM killer")

    @model_validator(mode="before")
    @classmethod
    def _sizes(cls, v):
        if isinstance(v, dict):
            v = {**v, **{k: size_bytes(v[k]) for k in ("memory", "headroom")
                         if v.get(k) is not None}}
        return v

    @model_validator(mode="after")
    def _something(self):
        if self.cpus is None and self.memory is None and self.headroom is None:
            raise ValueError("docker.limit needs `cpus:`, `memory:` (or `headroom:`), or both")
        if self.memory is not None and self.headroom is not None:
            raise ValueError("docker.limit takes `memory:` (a limit) or `headroom:` (above "
                             "its use now), not both")
        return self


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
                if recipe["action"] == "restore limits":
                    _restore_limits(c.api, cid, recipe["limits"][cid], state)
                    if recipe.get("limited_at"):
                        ooms = oom_kills(cid, recipe["limited_at"], time.time())
                        if ooms:
                            done.append(f"{cid[:12]} OOM-killed {len(ooms)} time(s) under the "
                                        "limit (the engine's count of its deaths)")
                elif recipe["action"] == "unpause" and state.get("Paused"):
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


@register
class DockerLimit(_DockerFault):
    """CPU and memory limits tightened on running containers (`docker update`): a PBX or SBC
    starved of CPU answers late; one whose memory grows past its limit is OOM-killed.
    `verify` reads the container's own cgroup (the CFS quota and the memory limit the kernel
    enforces)."""

    type = "docker.limit"
    Params = LimitParams
    action = "limit"
    rollback_action = "restore limits"

    def describe(self) -> str:
        p, what = self.params, []
        if p.cpus is not None:
            what.append(f"{p.cpus:g} cpus")
        if p.memory is not None:
            what.append(f"{p.memory / 2 ** 20:g} MiB")
        if p.headroom is not None:
            what.append(f"the memory it uses then + {p.headroom / 2 ** 20:g} MiB")
        return f"docker update of {self.target.name}'s container(s) to {' and '.join(what)}; " \
               "rollback: the limits they had, started again if the OOM killer stopped them"

    def recipe(self) -> dict:
        c = client()
        limits = {}
        for cid in self._ids():
            hc = c.api.inspect_container(cid)["HostConfig"]
            limits[cid] = {k: hc.get(k) or 0 for k in
                           ("NanoCpus", "CpuQuota", "CpuPeriod", "Memory", "MemorySwap")}
        return {**super().recipe(), "limits": limits}

    def prepare(self) -> None:
        super().prepare()
        if self.params.cpus is None:
            return
        c = client()
        nano = [cid[:12] for cid in self._ids()
                if c.api.inspect_container(cid)["HostConfig"].get("NanoCpus")]
        if nano:  # the engine refuses a CFS quota beside them, and the SDK cannot restore them
            raise FaultError(f"{self.target.name}: container(s) {', '.join(nano)} were started "
                             "with --cpus; docker.limit sets CPU as a CFS quota (start them "
                             "with --cpu-quota instead, or limit memory only)")

    def _memory_limit(self, cid: str) -> int | None:
        """The memory limit for one container: `memory:`, or its use now + `headroom:`."""
        p = self.params
        if p.headroom is None:
            return p.memory
        try:
            used = group_of(container_pid(cid)).memory()
        except OpsError as exc:
            raise FaultError(f"{self.target.name}: {exc}") from exc
        return max(DOCKER_MIN_MEMORY, used + p.headroom)

    def _act(self, api, cid: str) -> None:
        p, more = self.params, {}
        if p.cpus is not None:
            more.update(cpu_quota=int(p.cpus * CPU_PERIOD), cpu_period=CPU_PERIOD)
        memory = self._memory_limit(cid)
        if memory is not None:  # no swap beyond it: the limit is the limit
            more.update(mem_limit=memory, memswap_limit=memory)
            self.__dict__.setdefault("_memory", {})[cid] = memory  # (one thread per container)
        try:
            api.update_container(cid, **more)
        except Exception as exc:
            busy = "resource busy" in str(exc) or "device or resource" in str(exc).lower()
            raise FaultError(f"{self.target.name}: container {cid[:12]}: the engine refused "
                             f"the limits: {exc}" + (" (the kernel cannot reclaim what it uses "
                             "now: give a limit above its use, or `headroom:`)" if busy else "")
                             ) from exc

    def recipe_after_inject(self) -> dict:
        return {"memory_set": getattr(self, "_memory", {}), "limited_at": self._sent_at}

    def verify(self) -> bool:
        """The kernel enforces what was asked: the container's own cgroup files say so (a
        container already OOM-killed by the new limit has taken the fault too)."""
        c = client()
        for cid in self._ids():
            state = c.api.inspect_container(cid)["State"]
            if state.get("OOMKilled") or state["Status"] != "running":
                continue
            got = cgroup_limits(cid)
            if self.params.cpus is not None and got.get("cpu_quota") != int(self.params.cpus * CPU_PERIOD):
                return False
            if cid in getattr(self, "_memory", {}) and got.get("memory") != self._memory[cid]:
                return False
        return True


def cgroup_limits(cid: str) -> dict:
    """The CPU quota (µs per period, None: none) and memory limit (bytes, None: none) the
    container's own cgroup holds, and its CPU throttling count, read on the host (a command
    run inside would be charged to the container: at a tight memory limit, its first victim)."""
    try:
        g = group_of(container_pid(cid))
        return {"cpu_quota": g.cpu_quota(), "memory": g.memory_limit(),
                "throttled": g.throttled(), "used": g.memory()}
    except (OpsError, OSError, ValueError) as exc:
        raise FaultError(f"{cid[:12]}: its cgroup cannot be read: {exc}") from exc


def oom_kills(cid: str, since: float, until: float) -> list[float]:
    """When the container died of the kernel's OOM killer between `since` and `until`, by the
    engine's own event stream: each `die` that follows an `oom` within a second. (The engine
    sends an `oom` for each OOM notice of the cgroup, several for one kill at times.)"""
    events = client().api.events(since=int(since), until=int(until) + 1, decode=True,
                                 filters={"container": cid, "event": ["oom", "die"]})
    deaths, last_oom = [], None
    for e in events:
        t = e["timeNano"] / 1e9
        if e["Action"] == "oom":
            last_oom = t
        elif last_oom is not None and t - last_oom <= 1.0 and since <= t <= until:
            deaths.append(t)
            last_oom = None
    return deaths


def _restore_limits(api, cid: str, was: dict, state: dict) -> None:
    """The limits a container had; a memory limit where it had none becomes the machine's
    memory (Docker cannot remove a memory limit once one is set); a container the OOM
    killer stopped is started again (one its restart policy is bringing back is left to it).
    Memory goes up with memory+swap in the same step (cgroup v1 refuses a memory limit above
    the memory+swap one, which the fault had set equal to it), then swap as it was."""
    more = {}
    if was["CpuQuota"] > 0:
        more.update(cpu_quota=was["CpuQuota"], cpu_period=was["CpuPeriod"] or CPU_PERIOD)
    else:
        more.update(cpu_quota=-1)
    memory = was["Memory"] or _machine_memory()
    swap = was["MemorySwap"] if was["Memory"] and was["MemorySwap"] else -1
    api.update_container(cid, mem_limit=memory, memswap_limit=max(memory, swap), **more)
    if swap != max(memory, swap):
        api.update_container(cid, mem_limit=memory, memswap_limit=swap)
    if state["Status"] in ("exited", "created"):
        api.start(cid)


def _machine_memory() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise FaultError("/proc/meminfo has no MemTotal")
