"""`udp.*` faults: impairments on a UDP relay in a carrier path (SIP and RTP over UDP).

udp.latency    latency_ms (+ jitter_ms)       udp.loss       ratio
udp.reorder    ratio, reorder_gap_ms           udp.duplicate  ratio
udp.rate       rate_kbps (policer)             udp.blackhole  (cut the path)

Each adds one named toxic through the relay's control channel (the target's
`relay:` address); rollback removes exactly that toxic, by name.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.base import relay_family


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream: str = Field("both", pattern="^(upstream|downstream|both)$")
    toxicity: float = Field(1.0, ge=0, le=1)


class LatencyParams(_Common):
    latency_ms: float = Field(gt=0, le=60000)
    jitter_ms: float = Field(0, ge=0, le=60000)


class RatioParams(_Common):
    ratio: float = Field(gt=0, le=1)


class ReorderParams(RatioParams):
    reorder_gap_ms: float = Field(40, ge=0, le=10000)


class RateParams(_Common):
    rate_kbps: float = Field(gt=0)
    burst_bytes: int = Field(3000, ge=0)


relay_family("udp.latency", "latency", LatencyParams, "Delay datagrams by latency_ms ± jitter_ms.")
relay_family("udp.loss", "loss", RatioParams, "Drop a share `ratio` of datagrams at random.")
relay_family("udp.reorder", "reorder", ReorderParams, "Hold back a share of datagrams so they arrive late.")
relay_family("udp.duplicate", "duplicate", RatioParams, "Send a share of datagrams twice.")
relay_family("udp.rate", "rate", RateParams, "Cap the rate; datagrams above it are dropped.")
relay_family("udp.blackhole", "blackhole", _Common, "Drop every datagram: the path is cut.")
