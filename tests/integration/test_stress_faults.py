"""stress.* faults on a local process (a `sleep` we started), each checked against the
kernel's own record: the memory charged to its cgroup, its open-file limit in /proc, the
file's blocks and the filesystem's free space; each rollback leaves it as it was."""
import os
import subprocess

import pytest

from harness.faults.base import FaultError, lookup
from harness.ops.cgroups import group_of
from harness.scenario.inventory import Node, ProcessRef


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "120"])
    yield Node(name="sleeper", process=ProcessRef(pid=proc.pid)), proc.pid
    proc.kill()
    proc.wait()


def run(kind: str, node: Node, params: dict, fault_id: str = "t"):
    cls = lookup(kind)
    fault = cls(fault_id, node, cls.Params.model_validate(params))
    recipe = fault.recipe()
    fault.inject()
    return fault, {**recipe, **fault.recipe_after_inject()}, cls


def open_files(pid: int) -> str:
    return next(x for x in open(f"/proc/{pid}/limits") if x.startswith("Max open files"))


def test_memory_is_charged_to_the_group_the_process_shares_with_the_stressor(sleeper):
    node, pid = sleeper
    was = open(f"/proc/{pid}/cgroup").read()
    fault, recipe, cls = run("stress.memory", node, {"size": "64m", "cpus": 1})
    try:
        assert fault.verify()
        assert group_of(pid).memory() >= 60 * 2 ** 20  # the kernel's count, not ours
    finally:
        note = cls.undo(recipe)
    assert "stressor stopped" in note and open(f"/proc/{pid}/cgroup").read() == was
    assert not os.path.exists(recipe["group"]["memory"])


def test_a_process_in_the_top_group_is_refused_without_cpus(sleeper):
    """Refused where the process has no CPU share of its own (this project's machines);
    where it has one, the hogs join it and are stopped again. Never skipped."""
    node, pid = sleeper
    if group_of(pid).cpu_is_root():
        with pytest.raises(FaultError, match="give `cpus:`"):
            run("stress.cpu", node, {})
        return
    fault, recipe, cls = run("stress.cpu", node, {})
    try:
        assert fault.verify()
    finally:
        assert "stressor stopped" in cls.undo(recipe)


def test_fd_limit_and_disk_fill_are_the_kernels_and_are_undone(sleeper, tmp_path):
    node, pid = sleeper
    before = open_files(pid)
    fault, recipe, cls = run("stress.fd", node, {"free": 2})
    assert fault.verify() and open_files(pid).split()[3] == str(recipe["limit"])
    cls.undo(recipe)
    assert open_files(pid) == before

    def free() -> int:
        fs = os.statvfs(tmp_path)
        return fs.f_bavail * fs.f_frsize
    was = free()
    fault, recipe, cls = run("stress.disk", node, {"path": str(tmp_path), "size": "8m"}, "d")
    assert fault.verify()
    assert was - free() >= 7 * 2 ** 20  # the filesystem's own count (others may write too)
    assert "deleted" in cls.undo(recipe) and not os.listdir(tmp_path)
    with pytest.raises(FaultError, match="give `size`"):
        run("stress.disk", node, {"path": str(tmp_path)})
