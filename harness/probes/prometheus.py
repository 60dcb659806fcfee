"""A PromQL probe: one query against the hotline's own Prometheus, sampled through a drill
(a thread, every `every` seconds, each request bounded by `timeout`). The value of a sample
is the sum of the instant vector the query returns (None: no series). The abort rules'
PromQL condition asks through `instant` too."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse

from harness.ops.http import open_url
from harness.ops.secrets import redact_text


def instant(url: str, query: str, timeout: float) -> list[dict]:
    """The instant vector `query` returns now (OSError, ValueError or KeyError if none came)."""
    full = f"{url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with open_url(full, timeout=timeout) as resp:
        return json.load(resp)["data"]["result"]


def value(result: list[dict]) -> float | None:
    return sum(float(r["value"][1]) for r in result) if result else None


class Sampler:
    """Samples a query until stopped: [(time, value or None, error or None)]."""

    def __init__(self, url: str, query: str, every: float, timeout: float,
                 interrupt: threading.Event):
        self.url, self.query, self.every, self.timeout = url, query, every, timeout
        self.interrupt, self.done = interrupt, threading.Event()
        self.samples: list[tuple[float, float | None, str | None]] = []
        self.thread = threading.Thread(target=self._run, name="promql-probe", daemon=True)

    def start(self) -> "Sampler":
        self.thread.start()
        return self

    def _run(self) -> None:
        nxt = time.monotonic()
        while not (self.done.is_set() or self.interrupt.is_set()):
            at = time.time()
            try:
                self.samples.append((at, value(instant(self.url, self.query, self.timeout)), None))
            except (OSError, ValueError, KeyError) as exc:
                self.samples.append((at, None, redact_text(str(exc))[:200]))
            nxt += self.every
            self.done.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> list[tuple[float, float | None, str | None]]:
        self.done.set()
        self.thread.join(self.timeout + 1)
        return list(self.samples)
