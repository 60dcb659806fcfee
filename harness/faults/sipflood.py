"""`sipflood.scan`: a SIP scanning/enumeration flood (sipvicious svwar) against an allowlisted SBC.

Real attack traffic, bounded twice: by the number of extensions probed and by
`max_seconds` (svwar's --maximumtime), so it stops by itself; rollback stops
it early, by pid and start time. The target must be on the inventory's
allowlist like any fault target, and its SIP address comes from the inventory,
never from the scenario, so a scenario cannot aim the flood anywhere else.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.base import FaultError, Injector, register
from harness.ops.procs import proc_state
from harness.scenario.inventory import split_address
from harness.sip.message import listener_port


class ScanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extensions: int = Field(2000, ge=1, le=100000, description="how many extensions to probe")
    first_extension: int = Field(100, ge=0)
    method: str = Field("REGISTER", pattern="^(REGISTER|OPTIONS|INVITE)$")
    max_seconds: float = Field(30, gt=0, le=600)
    throttle: float | None = Field(None, gt=0, le=5, description="svwar's select timeout; higher is slower")
    local_ip: str = "127.0.0.1"
    local_port: int = Field(0, ge=0, le=65535, description="0: a free port")


@register
class SipScan(Injector):
    """Enumerate extensions on the target's SIP address with sipvicious svwar."""

    type = "sipflood.scan"
    Params = ScanParams

    def _address(self) -> str:
        addr = getattr(self.target, "sip", None) or getattr(self.target, "address", None)
        if not addr:
            raise FaultError(f"{self.target.name} has no SIP address in the inventory")
        return addr

    def argv(self) -> list[str]:
        tool = shutil.which("sipvicious_svwar")
        if not tool:
            raise FaultError("sipvicious_svwar not found (pip install sipvicious)")
        p = self.params
        host, port = split_address(self._address())
        last = p.first_extension + p.extensions - 1
        argv = [tool, "-e", f"{p.first_extension}-{last}", "-m", p.method, "--force",
                "--maximumtime", f"{int(p.max_seconds)}", "-p", str(port), "-b", p.local_ip,
                "-P", str(p.local_port or listener_port(p.local_ip)), "-q"]
        if p.throttle:
            argv += ["-t", str(p.throttle)]
        return argv + [host]

    def describe(self) -> str:
        p = self.params
        return f"sipvicious svwar {p.method} scan of {p.extensions} extensions against " \
               f"{self.target.name} ({self._address()}), at most {p.max_seconds:g}s; " \
               "rollback: stop it if still running"

    def recipe(self) -> dict:
        self._argv = self.argv()
        return {"target": self.target.name, "argv": self._argv}

    def inject(self) -> None:
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        st = proc_state(self._proc.pid)
        self.pid_start = (self._proc.pid, st[1] if st else None)

    def recipe_after_inject(self) -> dict:
        return {"pid": self.pid_start[0], "start_time": self.pid_start[1]}

    def verify(self) -> bool:
        return self._proc.poll() in (None, 0)

    @classmethod
    def undo(cls, recipe: dict) -> str:
        pid, start = recipe.get("pid"), recipe.get("start_time")
        if pid is None:
            return f"{recipe['target']}: the scan never started"
        st = proc_state(pid)
        if st is None or st[1] != start:
            return f"{recipe['target']}: the scan had finished"
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 2
        while proc_state(pid) and time.time() < deadline:
            time.sleep(0.02)
        if proc_state(pid):
            os.kill(pid, signal.SIGKILL)
        return f"{recipe['target']}: scan (pid {pid}) stopped"
