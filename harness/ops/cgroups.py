"""A process's control groups, read and written on the host: where a process's CPU and memory
are accounted (a container's cgroup, or the one a stress fault made), their counters, and
moving a process in and out. cgroup v1 (a hierarchy per controller, as Docker's cgroupfs
driver and this project's CI machines have) and v2 (one unified hierarchy) alike.

Why by hand: no maintained Python library covers both versions; the files are few and
documented in the kernel's cgroup-v1/ and cgroup-v2.rst.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.ops import OpsError

ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD = 100_000  # µs: the CFS period a quota is a share of
CONTROLLERS = ("cpu", "cpuacct", "memory")
NO_LIMIT = 2 ** 62  # v1 writes "no limit" as the largest page-aligned number


def _v2_root() -> Path | None:
    """The unified hierarchy's mount: /sys/fs/cgroup itself (v2 only) or .../unified (hybrid)."""
    for p in (ROOT, ROOT / "unified"):
        if (p / "cgroup.controllers").exists():
            return p
    return None


@dataclass(frozen=True)
class Group:
    """One process's cgroup: its directory per controller (v1), or one directory (v2)."""
    dirs: dict[str, str]   # controller -> directory ("" key: the v2 directory)

    @property
    def v2(self) -> bool:
        return "" in self.dirs

    def _file(self, controller: str, v1: str, v2: str) -> Path:
        return Path(self.dirs[""]) / v2 if self.v2 else Path(self.dirs[controller]) / v1

    def cpu_usage(self) -> float:
        """CPU seconds its processes have used."""
        if self.v2:
            stat = _keyed(Path(self.dirs[""]) / "cpu.stat")
            return stat.get("usage_usec", 0) / 1e6
        return int(Path(self.dirs["cpuacct"], "cpuacct.usage").read_text()) / 1e9

    def throttled(self) -> int:
        """Periods in which the CFS quota stopped its processes (0 without a quota)."""
        return _keyed(self._file("cpu", "cpu.stat", "cpu.stat")).get("nr_throttled", 0)

    def memory(self) -> int:
        """Bytes of memory charged to it now."""
        return int(self._file("memory", "memory.usage_in_bytes", "memory.current").read_text())

    def memory_limit(self) -> int | None:
        """The memory limit the kernel enforces (bytes; None: none)."""
        text = self._file("memory", "memory.limit_in_bytes", "memory.max").read_text().strip()
        return None if text == "max" or int(text) >= NO_LIMIT else int(text)

    def cpu_quota(self) -> int | None:
        """The CFS quota, µs of CPU per period (None: none)."""
        if self.v2:
            quota = Path(self.dirs[""], "cpu.max").read_text().split()[0]
        else:
            quota = Path(self.dirs["cpu"], "cpu.cfs_quota_us").read_text().strip()
        return None if quota in ("max", "-1") else int(quota)

    def procs_files(self, controllers=CONTROLLERS) -> list[str]:
        """The files a process is moved into it through."""
        if self.v2:
            return [str(Path(self.dirs[""]) / "cgroup.procs")]
        return [str(Path(self.dirs[c]) / "cgroup.procs") for c in controllers if c in self.dirs]

    def cpu_is_root(self) -> bool:
        """Its CPU is the machine's top group: nothing holds its processes to a share."""
        d = Path(self.dirs.get("", self.dirs.get("cpu", "")))
        return d in (ROOT, ROOT / "cpu", ROOT / "unified")


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def group_of(pid: int) -> Group:
    """The cgroup `pid` is accounted in; OpsError when it is gone or unreadable."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError as exc:
        raise OpsError(f"process {pid}: its cgroups cannot be read ({exc.strerror})") from exc
    dirs = {}
    for line in lines:
        _, names, path = line.split(":", 2)
        for c in names.split(","):
            if c in CONTROLLERS and (ROOT / c).is_dir():
                dirs[c] = str(ROOT / c / path.lstrip("/"))
    if {"cpu", "cpuacct", "memory"} <= set(dirs):
        return Group(dirs)
    v2 = _v2_root()
    path = next((x.split(":", 2)[2] for x in lines if x.startswith("0::")), None)
    if v2 is None or path is None:
        raise OpsError(f"process {pid}: no cpu and memory cgroup found (neither v1 nor v2)")
    return Group({"": str(v2 / path.lstrip("/"))})


def make_group(name: str, cpus: float | None, beside: Group) -> Group:
    """A new cgroup `name` for a process now in `beside`, with a CFS quota of `cpus` cores
    when given. v1: a child of its group in each hierarchy (it stays within what holds it
    now); v2: a child of the unified root (v2 keeps processes out of inner groups)."""
    try:
        if not beside.v2:
            g = Group({c: str(Path(d) / name) for c, d in beside.dirs.items()})
            for d in g.dirs.values():
                Path(d).mkdir(exist_ok=True)
            if cpus is not None:
                Path(g.dirs["cpu"], "cpu.cfs_period_us").write_text(str(CPU_PERIOD))
                Path(g.dirs["cpu"], "cpu.cfs_quota_us").write_text(str(int(cpus * CPU_PERIOD)))
            return g
        v2 = _v2_root()
        g = Group({"": str(v2 / name)})
        Path(g.dirs[""]).mkdir(exist_ok=True)
        if cpus is not None:
            Path(g.dirs[""], "cpu.max").write_text(f"{int(cpus * CPU_PERIOD)} {CPU_PERIOD}")
        return g
    except OSError as exc:
        raise OpsError(f"cannot make cgroup {name}: {exc.strerror} (root, and a writable "
                       "cgroup hierarchy, are needed)") from exc


def move(pid: int, files: list[str]) -> None:
    """Move process `pid` (all its threads) into the groups whose cgroup.procs are `files`."""
    for f in files:
        try:
            Path(f).write_text(str(pid))
        except OSError as exc:
            raise OpsError(f"cannot move process {pid} into {f}: {exc.strerror}") from exc


def move_all(src: Group, dst: Group) -> None:
    """Every process still in `src` into `dst` (one that exits meanwhile is left alone)."""
    for here, there in zip(src.procs_files(), dst.procs_files()):
        try:
            pids = Path(here).read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                Path(there).write_text(pid)
            except OSError:
                pass


def remove_group(g: Group, within: float = 2.0) -> bool:
    """Remove an emptied group (its last process may take a moment to leave); False if it
    still holds one after `within` seconds."""
    deadline = time.time() + within
    left = [Path(d) for d in g.dirs.values()]
    while left:
        for d in list(left):
            try:
                d.rmdir()
                left.remove(d)
            except FileNotFoundError:
                left.remove(d)
            except OSError:
                pass
        if left and time.time() > deadline:
            return False
        if left:
            time.sleep(0.05)
    return True
