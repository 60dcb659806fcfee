"""The Docker Engine client (docker SDK), made once, and the wait for a healthy container."""
from __future__ import annotations

import functools
import time

from harness.ops import OpsError

HEALTHY_WAIT = 30.0


@functools.cache
def client():
    """The Docker Engine client, made once (a failure is not cached, so a later call retries)."""
    try:
        import docker
        return docker.from_env(version="auto", timeout=30)
    except Exception as exc:  # DockerException: no engine, no socket, no permission
        raise OpsError(f"no Docker engine reachable ({exc}); start one with lab/dockerd-up.sh") from exc


def wait_healthy(container_id: str, within: float = HEALTHY_WAIT) -> str:
    """Wait until the container runs (and is healthy if it has a healthcheck); return its state."""
    c = client()
    deadline = time.time() + within
    state = "?"
    while time.time() < deadline:
        attrs = c.api.inspect_container(container_id)["State"]
        health = (attrs.get("Health") or {}).get("Status")
        state = health or attrs["Status"]
        if attrs["Status"] == "running" and not attrs.get("Paused") and health in (None, "healthy"):
            return state
        time.sleep(0.2)
    raise OpsError(f"container {container_id[:12]} is not running and healthy after "
                   f"{within:g}s (state: {state})")


def container_pid(container: str) -> int:
    """The host pid of a running container's first process (its network namespace's handle)."""
    api = client().api  # OpsError when there is no engine
    try:
        pid = api.inspect_container(container)["State"]["Pid"]
    except Exception as exc:
        raise OpsError(f"cannot inspect container {container}: {exc}") from exc
    if not pid:
        raise OpsError(f"container {container} is not running, so it has no network namespace")
    return pid


def matching(ref) -> list:
    """Containers (running or not) that the inventory's `docker:` reference names."""
    c = client()
    if ref.name:
        return c.containers.list(all=True, filters={"name": f"^/?{ref.name}$"})
    labels = []
    if ref.label:
        labels.append(ref.label)
    if ref.service:
        labels.append(f"com.docker.compose.service={ref.service}")
        if ref.project:
            labels.append(f"com.docker.compose.project={ref.project}")
    return c.containers.list(all=True, filters={"label": labels})
