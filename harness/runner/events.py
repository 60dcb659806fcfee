"""The event seam: load, faults and probes publish; the log, live view and counters listen."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

Listener = Callable[[dict], None]


class EventBus:
    def __init__(self):
        self.listeners: list[Listener] = []

    def subscribe(self, fn: Listener) -> None:
        self.listeners.append(fn)

    def publish(self, event: str, **data) -> dict:
        ev = {"event": event, "ts": data.pop("ts", time.time()), **data}
        for fn in self.listeners:
            fn(ev)
        return ev


class JsonlLog:
    """events.jsonl: one line per event, flushed as it happens so a crash loses nothing."""

    def __init__(self, path: Path):
        self.fh = open(path, "a", buffering=1)

    def __call__(self, ev: dict) -> None:
        self.fh.write(json.dumps(ev, default=str) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def read_events(path: Path) -> list[dict]:
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # torn last line after a crash
    return out
