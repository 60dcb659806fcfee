"""Load engines, registered like fault families and targets: each says what it can do.

A scenario's `load.engine:` names an entry of the `hotline_drill.engines` entry point; the
plan asks the engine's declared abilities (media, fallback addresses, workers, digest
authentication, TLS) rather than its name. This module is light on purpose: validating a
scenario must not import Locust or start gevent, so each engine is built by a function that
imports its module only when a drill really runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.load.engine import LoadEngine
from harness.metrics.records import CallRecord
from harness.ops import plugins
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec


@dataclass
class LoadContext:
    """What every engine is built from, for one drill."""
    spec: LoadSpec
    entries: list[EntryPoint]  # the carriers the scenario loads (all entry points by default)
    on_record: Callable[[CallRecord], None]
    node_of: Callable[[str], str]
    run_dir: Path
    duration: float
    publish: Callable[..., None]
    seed: int | None = None
    callees: tuple[str, ...] = ()  # the numbers calls dial in turn (none: the hotline's)


@dataclass(frozen=True)
class EngineKind:
    name: str
    about: str
    make: Callable[[LoadContext], LoadEngine]
    media: bool = False     # sends RTP and measures what comes back
    fallback: bool = False  # tries an entry point's fallback addresses, as a carrier does
    workers: bool = False   # spreads over worker processes (`--workers`, `--master`)
    auth: bool = False      # answers digest challenges
    tls: bool = False       # speaks SIP over TLS
    srtp: bool = False      # offers and speaks SRTP with SDES keys
    journey: bool = False   # runs the caller's journey (prompt, keys, queue, agent)
    dial_agents: bool = False  # dials the agents' own numbers in turn (load.dial: agents)
    dns: bool = False       # locates an entry point's domain by DNS (RFC 3263), call by call


def all_engines() -> dict[str, EngineKind]:
    return plugins.load(plugins.ENGINES)


def engine_named(name: str) -> EngineKind | None:
    return all_engines().get(name)


def _locust(ctx: LoadContext) -> LoadEngine:
    from harness.load.sip_load import LoadController  # imports Locust (gevent)
    return LoadController(ctx.spec, ctx.entries, on_record=ctx.on_record, node_of=ctx.node_of,
                          seed=ctx.seed, callees=ctx.callees)


def _sipp(ctx: LoadContext) -> LoadEngine:
    from harness.load.sipp_engine import SippLoad
    return SippLoad(ctx.spec, ctx.entries, ctx.on_record, ctx.node_of, ctx.run_dir, ctx.duration,
                    ctx.publish)


LOCUST = EngineKind("locust", "Python callers under Locust: SIP over UDP, TCP or TLS with "
                    "G.711 RTP or SRTP measured both ways", _locust, media=True,
                    fallback=True, workers=True, auth=True, tls=True, srtp=True,
                    journey=True, dial_agents=True, dns=True)
# Debian's SIPp 3.6.1 is built without TLS (`sipp -v`: SCTP-PCAP-RTPSTREAM): tls=False
SIPP = EngineKind("sipp", "a real SIPp per entry point (signalling only: this SIPp sends no "
                  "RTP, and has no TLS; digest answered by SIPp's [authentication])", _sipp,
                  auth=True)
