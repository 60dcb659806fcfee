"""`stress.*` faults: a node starved of CPU, memory, file descriptors or disk by something
beside it, as a runaway neighbour, a leak or a full log partition starves a PBX or an SBC.

stress.cpu     `workers` stress-ng CPU hogs at `load` %       in the node's cgroup
stress.memory  stress-ng holding `size` of memory             in the node's cgroup
stress.fd      the process's open-file (soft) limit cut to what it holds + `free` (prlimit)
stress.disk    a file filling `path` (`size`, or all but `leave`)  in the node's filesystem

The node is a local process (`process:`) or a container (`docker:`, its first process as the
host sees it). The stressors run on the host and join the node's own cgroup, so they compete
for its CPU quota and its memory limit and nothing else: a container's, or, with `cpus:`, a
cgroup made for the node and its stressor with that many cores (a local process in the
machine's top group has no share of its own to starve). `verify` reads that cgroup's own
counters (CPU used or quota throttling, memory charged), the process's limits in /proc, the
file's size. Rollback stops the stressors (they also stop by themselves after `max_seconds`),
moves the node back where it was, restores its limits, removes the file.

Why on the host and not with `docker exec`: the lab's images then need no stress-ng, a
distroless container can be stressed too, and one code path serves containers and processes.
"""
from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.faults.base import FaultError, Injector, register, size_bytes
from harness.ops import OpsError
from harness.ops.cgroups import Group, group_of, make_group, move, move_all, remove_group
from harness.ops.docker_api import container_pid, matching
from harness.ops.procs import proc_state, read_pid, spawn_bounded, stop_group

VERIFY_WITHIN = 5.0  # s for the pressure to show in the counters


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_seconds: int = Field(600, ge=1, le=86400, description="the stressor stops by itself "
                             "then, whatever happens to the drill")


class CpuParams(_Common):
    workers: int = Field(1, ge=1, le=64)
    load: int = Field(100, ge=1, le=100, description="% of a core each worker keeps busy")
    cpus: float | None = Field(None, gt=0, le=64, description="hold the node and its "
                               "stressors to this many cores (a cgroup made for them)")


class MemoryParams(_Common):
    size: int = Field(description="memory the stressor holds, e.g. 256m")
    cpus: float | None = Field(None, gt=0, le=64)

    _size = field_validator("size", mode="before")(lambda cls, v: size_bytes(v))


class FdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    free: int = Field(0, ge=0, le=100000, description="descriptors left beyond those open now")


class DiskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="a directory on the filesystem to fill, as the node sees it")
    size: int | None = Field(None, description="bytes to write; or leave:")
    leave: int | None = Field(None, description="fill until only this much is free")

    _sizes = field_validator("size", "leave", mode="before")(
        lambda cls, v: None if v is None else size_bytes(v))


def node_pid(target) -> tuple[int, int, str | None]:
    """(host pid, start time, container id or None) of the node's process: its pidfile's or
    pid, or its container's first process."""
    ref = getattr(target, "process", None)
    pid, container = None, None
    if ref is not None and not ref.systemd_unit:
        pid = ref.pid or read_pid(ref.pidfile)
    elif getattr(target, "docker", None) is not None:
        found = [c for c in matching(target.docker) if c.status == "running"]
        if len(found) != 1:
            raise FaultError(f"{target.name}: a stress fault acts on one running container; "
                             f"its `docker:` selects {len(found)}")
        container = found[0].id
        pid = container_pid(container)
    else:
        raise FaultError(f"{target.name} has no `process:` (pidfile or pid) or `docker:` to "
                         "find its process by")
    st = proc_state(pid) if pid else None
    if st is None:
        raise FaultError(f"{target.name} is not running; a stress fault needs a live target")
    return pid, st[1], container


def _alive(pid: int | None, start: int | None) -> bool:
    st = proc_state(pid) if pid else None
    return st is not None and st[1] == start and st[0] != "Z"


class _Stressor(Injector):
    """stress-ng beside the node, in its cgroup (or one made for both)."""

    def describe(self) -> str:
        p = self.params
        where = f"a cgroup of {p.cpus:g} core(s) made for it and {self.target.name}" \
            if p.cpus else f"{self.target.name}'s own cgroup"
        return f"{self._what()} in {where}, at most {p.max_seconds}s; rollback: stop it" + \
            (f", {self.target.name} back to its cgroup" if p.cpus else "")

    def _stress_args(self) -> list[str]:
        raise NotImplementedError

    def recipe(self) -> dict:
        if getattr(self, "_recipe", None) is None:
            if shutil.which("stress-ng") is None:
                raise FaultError("stress-ng is not installed (apt-get install stress-ng)")
            pid, start, _ = node_pid(self.target)
            try:
                g = group_of(pid)
            except OpsError as exc:
                raise FaultError(str(exc)) from exc
            if self.params.cpus is None and g.cpu_is_root():
                raise FaultError(f"{self.target.name} runs in the machine's top cgroup: a "
                                 "stressor there takes the other cores, not its share (hint: "
                                 "give `cpus:`, the cores it and the stressor are held to)")
            self._recipe = {"target": self.target.name, "pid": pid, "start_time": start,
                            # one name per drill and node: two drills side by side (or one
                            # stressing two nodes) never share, nor remove, each other's group
                            "was": g.dirs, "made": f"hotline-drill-{self.fault_id}-{pid}-{start}"
                            if self.params.cpus else None}
        return self._recipe

    def inject(self) -> None:
        r = self.recipe()
        was = Group(r["was"])
        try:
            g = make_group(r["made"], self.params.cpus, was) if r["made"] else was
            if r["made"]:
                move(r["pid"], g.procs_files())
        except OpsError as exc:
            raise FaultError(str(exc)) from exc
        self._group, self._before = g, (g.cpu_usage(), g.throttled(), g.memory())
        # the shell joins the cgroup, then becomes stress-ng: its workers are born inside
        argv = ["sh", "-c", 'for f in $HD_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done; '
                'exec stress-ng "$@"', "stress-ng", *self._stress_args(),
                "--timeout", f"{self.params.max_seconds}s", "--quiet"]
        pid, start = spawn_bounded(argv, {**os.environ,
                                          "HD_CGROUP_PROCS": " ".join(g.procs_files())})
        self._stressor = {"stressor": pid, "stressor_start": start, "group": g.dirs}

    def recipe_after_inject(self) -> dict:
        return self._stressor

    def verify(self) -> bool:
        deadline = time.time() + VERIFY_WITHIN
        while time.time() < deadline:
            if not _alive(self._stressor["stressor"], self._stressor["stressor_start"]):
                return False  # it could not join the cgroup, or died
            if self._felt():
                return True
            time.sleep(0.2)
        return False

    def _felt(self) -> bool:
        raise NotImplementedError

    @classmethod
    def undo(cls, recipe: dict) -> str:
        notes = []
        pid, start = recipe.get("stressor"), recipe.get("stressor_start")
        if _alive(pid, start):
            stop_group(pid)  # its own session: stress-ng and its workers
            notes.append("stressor stopped")
        else:
            notes.append("stressor already gone")
        group = recipe.get("group")
        if group:
            g = Group(group)
            try:
                notes.append(f"its cgroup used {g.cpu_usage():.1f} CPU s, throttled "
                             f"{g.throttled()} periods")
            except (OSError, ValueError):
                pass
        if recipe.get("made"):
            if _alive(recipe["pid"], recipe["start_time"]):
                try:
                    move(recipe["pid"], Group(recipe["was"]).procs_files())
                    notes.append(f"{recipe['target']} back in its cgroup")
                except OpsError as exc:
                    raise FaultError(str(exc)) from exc
            if group:
                # whatever else is in it (a child the node forked meanwhile) goes back too
                move_all(Group(group), Group(recipe["was"]))
                if not remove_group(Group(group), within=5.0):
                    raise FaultError(f"cgroup {recipe['made']} still holds a process")
        return f"{recipe['target']}: " + "; ".join(notes)


@register
class StressCpu(_Stressor):
    """CPU hogs beside the node: its calls wait for the CPU (post-dial delay rises)."""

    type = "stress.cpu"
    Params = CpuParams

    def _what(self) -> str:
        return f"{self.params.workers} CPU hog(s) at {self.params.load}%"

    def _stress_args(self) -> list[str]:
        return ["--cpu", str(self.params.workers), "--cpu-load", str(self.params.load)]

    def _felt(self) -> bool:
        """The cgroup's CPU use grew by half of what the hogs ask (or of its quota), or
        its quota throttled it."""
        used, throttled, _ = self._before
        g = self._group
        time.sleep(0.5)
        want = self.params.workers * self.params.load / 100
        if self.params.cpus:
            want = min(want, self.params.cpus)
        return g.throttled() > throttled or g.cpu_usage() - used >= 0.5 * want * 0.5


@register
class StressMemory(_Stressor):
    """Memory held beside the node: past its limit, the kernel's OOM killer picks a victim."""

    type = "stress.memory"
    Params = MemoryParams

    def _what(self) -> str:
        return f"{self.params.size / 2 ** 20:.0f} MiB held"

    def _stress_args(self) -> list[str]:
        # one worker maps `size`, touches it, then sleeps on it (no CPU spent)
        return ["--vm", "1", "--vm-bytes", str(self.params.size), "--vm-hang", "0"]

    def _felt(self) -> bool:
        return self._group.memory() - self._before[2] >= 0.8 * self.params.size


def _nofile(pid: int) -> tuple[int, int]:
    """(soft, hard) open-file limit of a process, from /proc."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            big = resource.RLIM_INFINITY
            return (big if soft == "unlimited" else int(soft)), (big if hard == "unlimited"
                                                                 else int(hard))
    raise FaultError(f"process {pid}: no open-file limit in /proc")


@register
class StressFd(Injector):
    """The node's open-file limit cut to the descriptors it holds (+ `free`): the next
    socket, file or connection it opens fails (EMFILE), as under a descriptor leak."""

    type = "stress.fd"
    Params = FdParams

    def describe(self) -> str:
        return f"{self.target.name}'s open-file limit cut to what it holds + " \
               f"{self.params.free}; rollback: the limit it had"

    def recipe(self) -> dict:
        if getattr(self, "_recipe", None) is None:
            pid, start, _ = node_pid(self.target)
            soft, hard = _nofile(pid)
            held = len(os.listdir(f"/proc/{pid}/fd"))
            self._recipe = {"target": self.target.name, "pid": pid, "start_time": start,
                            "soft": soft, "hard": hard, "limit": held + self.params.free}
        return self._recipe

    def inject(self) -> None:
        r = self.recipe()
        try:
            # the soft limit: the hard one could not be raised again without CAP_SYS_RESOURCE
            resource.prlimit(r["pid"], resource.RLIMIT_NOFILE, (r["limit"], r["hard"]))
        except OSError as exc:
            raise FaultError(f"{r['target']}: cannot set its open-file limit: {exc}") from exc

    def verify(self) -> bool:
        r = self.recipe()
        return _nofile(r["pid"]) == (r["limit"], r["hard"])

    @classmethod
    def undo(cls, recipe: dict) -> str:
        if not _alive(recipe["pid"], recipe["start_time"]):
            return f"{recipe['target']}: the process is gone (a new one has its own limit)"
        try:
            resource.prlimit(recipe["pid"], resource.RLIMIT_NOFILE,
                             (recipe["soft"], recipe["hard"]))
        except OSError as exc:
            raise FaultError(f"{recipe['target']}: cannot restore its open-file limit: "
                             f"{exc}") from exc
        return f"{recipe['target']}: open-file limit {recipe['soft']}/{recipe['hard']} again"


@register
class StressDisk(Injector):
    """A file filling the node's filesystem at `path` (through /proc/PID/root, so a
    container's own): logs, recordings and databases on it fail to write."""

    type = "stress.disk"
    Params = DiskParams

    def describe(self) -> str:
        how = f"{self.params.size} bytes" if self.params.size else \
            f"all but {self.params.leave} bytes"
        return f"a file of {how} in {self.params.path} on {self.target.name}; rollback: " \
               "delete it"

    def recipe(self) -> dict:
        if getattr(self, "_recipe", None) is None:
            p = self.params
            if (p.size is None) == (p.leave is None):
                raise FaultError("stress.disk: give `size` (bytes to write) or `leave` (bytes "
                                 "to leave free), one of the two")
            pid, _, container = node_pid(self.target)
            folder = Path(f"/proc/{pid}/root") / p.path.lstrip("/")
            if not folder.is_dir():
                raise FaultError(f"{self.target.name}: {p.path} is not a directory it sees")
            fs = os.statvfs(folder)
            free = fs.f_bavail * fs.f_frsize
            size = p.size if p.size is not None else free - p.leave
            if size <= 0 or size > free:
                raise FaultError(f"{self.target.name}: {p.path} has {free} bytes free; "
                                 f"cannot write {size}")
            name = f"hotline-drill-{self.fault_id}.fill"
            # a container's file is found again through its first process, whichever it is
            # then; a local process's through the host's own path
            self._recipe = {"target": self.target.name, "size": size, "container": container,
                            "file": str(Path(p.path) / name) if container
                            else os.path.join(os.path.realpath(folder), name)}
        return self._recipe

    @staticmethod
    def _host_path(recipe: dict) -> str:
        if not recipe.get("container"):
            return recipe["file"]
        return f"/proc/{container_pid(recipe['container'])}/root{recipe['file']}"

    def inject(self) -> None:
        r = self.recipe()
        try:
            fd = os.open(self._host_path(r), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.posix_fallocate(fd, 0, r["size"])
            finally:
                os.close(fd)
        except OSError as exc:
            raise FaultError(f"{r['target']}: cannot fill {r['file']}: {exc.strerror}") from exc

    def verify(self) -> bool:
        r = self.recipe()
        return os.stat(self._host_path(r)).st_blocks * 512 >= r["size"]

    @classmethod
    def undo(cls, recipe: dict) -> str:
        try:
            os.unlink(cls._host_path(recipe))
            return f"{recipe['target']}: {recipe['file']} deleted"
        except FileNotFoundError:
            return f"{recipe['target']}: {recipe['file']} was already gone"
        except OpsError as exc:  # the container is not running: its file is still there
            raise FaultError(f"{recipe['target']}: {recipe['file']}: {exc} (start it, then "
                             "`drill recover` again)") from exc
