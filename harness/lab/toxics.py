"""UDP toxics: what a relay does to each datagram (latency, jitter, loss, reorder, duplicate, rate, blackhole).

Toxiproxy speaks TCP only and this kernel has no netem, so SIP and RTP over
UDP are impaired in user space. The vocabulary follows Toxiproxy: each toxic
has a name, a type, a stream (upstream = towards the SBC, downstream = back to
the caller, or both), a toxicity (share of datagrams it applies to) and
attributes. Pure decisions live here; the relay applies them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

STREAMS = ("upstream", "downstream", "both")


class Toxic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: str = Field(pattern="^(latency|loss|reorder|duplicate|rate|blackhole)$")
    stream: str = Field("both", pattern="^(upstream|downstream|both)$")
    toxicity: float = Field(1.0, ge=0, le=1)
    latency_ms: float = Field(0, ge=0, le=60000)
    jitter_ms: float = Field(0, ge=0, le=60000)
    ratio: float = Field(0, ge=0, le=1)           # loss / reorder / duplicate probability
    reorder_gap_ms: float = Field(40, ge=0, le=10000)
    rate_kbps: float = Field(0, ge=0)             # rate cap, kilobits per second
    burst_bytes: int = Field(3000, ge=0)


@dataclass
class Verdict:
    """What to do with one datagram: send copies after these delays (empty = drop)."""

    delays: list[float] = field(default_factory=lambda: [0.0])


@dataclass
class Bucket:
    """Token bucket for the rate cap; datagrams above the rate are dropped (a policer)."""

    rate_bytes: float
    burst: float
    tokens: float
    last: float

    def allow(self, size: int, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate_bytes)
        self.last = now
        if self.tokens >= size:
            self.tokens -= size
            return True
        return False


class Pipeline:
    """The toxics of one relay, applied in the order they were added."""

    def __init__(self, seed: int | None = None):
        self.toxics: dict[str, Toxic] = {}
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.rng = random.Random(seed)

    def add(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ValueError(f"toxic {toxic.name!r} exists already")
        self.toxics[toxic.name] = toxic

    def remove(self, name: str) -> bool:
        for key in [k for k in self.buckets if k[0] == name]:
            del self.buckets[key]
        return self.toxics.pop(name, None) is not None

    def decide(self, stream: str, size: int, now: float) -> Verdict:
        v = Verdict()
        for t in self.toxics.values():
            if t.stream not in (stream, "both"):
                continue
            if t.toxicity < 1 and self.rng.random() >= t.toxicity:
                continue
            if t.type == "blackhole":
                return Verdict([])
            if t.type == "loss" and self.rng.random() < t.ratio:
                return Verdict([])
            if t.type == "rate":
                b = self.buckets.setdefault((t.name, stream), Bucket(
                    t.rate_kbps * 125, t.burst_bytes, t.burst_bytes, now))
                if not b.allow(size, now):
                    return Verdict([])
            if t.type == "latency":
                d = (t.latency_ms + self.rng.uniform(-t.jitter_ms, t.jitter_ms)) / 1000
                v.delays = [x + max(0.0, d) for x in v.delays]
            if t.type == "reorder" and self.rng.random() < t.ratio:
                v.delays = [x + t.reorder_gap_ms / 1000 for x in v.delays]
            if t.type == "duplicate" and self.rng.random() < t.ratio:
                v.delays = v.delays + [v.delays[-1]]
        return v
