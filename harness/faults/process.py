"""`process.*` faults: signals to a local process (by pidfile, pid, or systemd unit).

process.kill       SIGKILL (or `signal:`), rolled back by restarting it
process.terminate  SIGTERM, rolled back by restarting it
process.pause      SIGSTOP (a hang), rolled back by SIGCONT

A process is identified by pid *and* start time, so a recycled pid is never
signalled by mistake. A systemd unit is signalled with `systemctl kill` and
restarted with `systemctl start`, where systemd runs (checked, not assumed).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.faults.base import FaultError, Injector, SignalName, register
from harness.ops.procs import proc_state, read_pid, start_process
from harness.scenario.inventory import split_address
from harness.sip.probe import wait_until_answers

RESTART_WAIT = 10.0


def systemd_check() -> None:
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        raise FaultError("systemd is not running on this machine, so a `systemd_unit` cannot be "
                         "signalled here; give the process a pidfile or pid instead")


def systemctl(*args: str) -> str:
    res = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise FaultError(f"systemctl {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def main_pid(unit: str) -> int | None:
    pid = systemctl("show", "--property=MainPID", "--value", unit)
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


class SignalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal: SignalName = "SIGKILL"


class _ProcessFault(Injector):
    signal_name = "SIGKILL"
    rollback_action = "restart"

    def _ref(self):
        ref = getattr(self.target, "process", None)
        if ref is None:
            raise FaultError(f"{self.target.name} has no `process:` (pidfile, pid or systemd_unit) "
                             "in the inventory")
        return ref

    def _signal(self) -> str:
        return self.signal_name

    def describe(self) -> str:
        how = "restart it and wait for SIP OPTIONS" if self.rollback_action == "restart" \
            else "SIGCONT"
        return f"{self._signal()} to the process of {self.target.name}; rollback: {how}"

    def recipe(self) -> dict:
        if getattr(self, "_recipe", None) is None:
            self._recipe = self._make_recipe()
        return self._recipe

    def _make_recipe(self) -> dict:
        ref = self._ref()
        base = {"action": self.rollback_action, "name": self.target.name,
                "sip": getattr(self.target, "sip", None) or getattr(self.target, "address", None)}
        if ref.systemd_unit:
            systemd_check()
            return {**base, "unit": ref.systemd_unit, "signal": self._signal()}
        pid = ref.pid or read_pid(ref.pidfile)
        st = proc_state(pid) if pid else None
        if st is None:
            where = f"pidfile {ref.pidfile}" if ref.pidfile else f"pid {ref.pid}"
            raise FaultError(f"{self.target.name} is not running ({where}); a fault needs a live target")
        if self.rollback_action == "restart" and not ref.start:
            raise FaultError(f"{self.target.name}: {self.type} needs `process.start` in the inventory "
                             "to restart it afterwards (and a pidfile)")
        return {**base, "pid": pid, "start_time": st[1], "pidfile": ref.pidfile, "start": ref.start,
                "cwd": ref.cwd, "log": ref.log}

    def inject(self) -> None:
        r = self.recipe()
        if "unit" in r:
            systemctl("kill", f"--signal={r['signal']}", r["unit"])
            self._pid = main_pid(r["unit"])
            return
        os.kill(r["pid"], getattr(signal, self._signal()))
        self._pid = r["pid"]

    def verify(self, within: float = 3.0) -> bool:
        deadline = time.time() + within
        while time.time() < deadline:
            st = proc_state(self._pid) if self._pid else None
            if self.rollback_action == "resume" and st and st[0] == "T":
                return True
            if self.rollback_action == "restart" and st is None:
                return True
            time.sleep(0.02)
        return False

    @classmethod
    def undo(cls, recipe: dict) -> str:
        if "unit" in recipe:
            if recipe["action"] == "resume":
                systemctl("kill", "--signal=SIGCONT", recipe["unit"])
            else:
                systemctl("start", recipe["unit"])
            return f"{recipe['name']}: systemd unit {recipe['unit']} " + \
                ("resumed" if recipe["action"] == "resume" else "started")
        if recipe["action"] == "resume":
            st = proc_state(recipe["pid"])
            if st is None or st[1] != recipe["start_time"]:
                return f"{recipe['name']}: process {recipe['pid']} is gone; nothing to resume"
            os.kill(recipe["pid"], signal.SIGCONT)
            return f"{recipe['name']}: SIGCONT to {recipe['pid']}"
        current = read_pid(recipe["pidfile"])
        if current and proc_state(current):
            return f"{recipe['name']}: already running as pid {current}"
        if not recipe.get("start"):
            raise FaultError(f"{recipe['name']}: no start command in the inventory; restart it by hand")
        pid = start_process(recipe["start"], recipe["pidfile"], recipe.get("cwd"), recipe.get("log"))
        if recipe.get("sip") and not wait_until_answers(split_address(recipe["sip"]), RESTART_WAIT):
            raise FaultError(f"{recipe['name']}: restarted as pid {pid} but it does not answer "
                             f"SIP OPTIONS at {recipe['sip']} within {RESTART_WAIT:.0f}s")
        return f"{recipe['name']}: restarted as pid {pid}"


@register
class ProcessKill(_ProcessFault):
    """Kill a node's process (default SIGKILL); rollback restarts it."""

    type = "process.kill"
    Params = SignalParams

    def _signal(self) -> str:
        return self.params.signal


@register
class ProcessTerminate(_ProcessFault):
    """Ask a node's process to stop (SIGTERM); rollback restarts it."""

    type = "process.terminate"
    signal_name = "SIGTERM"


@register
class ProcessPause(_ProcessFault):
    """Freeze a node's process (SIGSTOP), as a hang; rollback resumes it."""

    type = "process.pause"
    signal_name = "SIGSTOP"
    rollback_action = "resume"
