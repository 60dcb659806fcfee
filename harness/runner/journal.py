"""Write-ahead journal of injected faults: durable before injection, closed after rollback.

One JSON line per entry, fsync'd, under an flock so two drills on one machine
do not interleave lines. `open_faults()` is what `drill recover` undoes.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, entry: dict) -> None:
        entry = {"ts": time.time(), **entry}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # its owner's only
        with os.fdopen(fd, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            fcntl.flock(fh, fcntl.LOCK_UN)

    def intent(self, run_id: str, fault_id: str, type_: str, target: str, recipe: dict) -> None:
        """Record a fault and how to undo it, before it is injected."""
        self._append({"op": "inject", "run_id": run_id, "fault_id": fault_id, "type": type_,
                      "target": target, "recipe": recipe, "pid": os.getpid()})

    def amend(self, run_id: str, fault_id: str, extra: dict) -> None:
        """Add facts learned only by injecting (e.g. the pid of a flood) to a fault's recipe."""
        self._append({"op": "amend", "run_id": run_id, "fault_id": fault_id, "recipe": extra})

    def closed(self, run_id: str, fault_id: str, note: str) -> None:
        self._append({"op": "rolled_back", "run_id": run_id, "fault_id": fault_id, "note": note})

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after power loss: that intent never completed
        return out

    def open_faults(self, run_id: str | None = None) -> list[dict]:
        """Injected (or about to be) and not yet confirmed rolled back, oldest first."""
        opened: dict[tuple, dict] = {}
        for e in self.entries():
            key = (e.get("run_id"), e.get("fault_id"))
            if e.get("op") == "inject":
                opened[key] = e
            elif e.get("op") == "amend" and key in opened:
                opened[key] = {**opened[key], "recipe": {**opened[key]["recipe"], **e["recipe"]}}
            elif e.get("op") == "rolled_back":
                opened.pop(key, None)
        return [e for k, e in opened.items() if run_id is None or k[0] == run_id]
