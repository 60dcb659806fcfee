"""Sandbox contact centre: an IVR, a menu, queues of skill groups, agents, and its own ACD log.

Run as its own process, like a PBX node (it is one, with a queue behind its answer):
`python -m harness.lab.acd --name acd-1 --listen 127.10.0.31:5060 --group 1=3 --log acd.jsonl`.

A call is answered at once (the IVR's 200 comes whether or not anyone will be reached), and
once ACKed it hears the IVR's prompt marker, an RFC 4733 key (default `A`). The caller's
first key chooses the skill group (`--menu 1=sales`; a key not in the menu, or none within
the IVR's time, goes to the first group). The caller then waits in that group's queue,
first come first served, until one of its agents is free: the agent answers with the agent
marker (default `D`), and is busy until the caller hangs up, or with `--handle` until its
handle time is over (then it hangs up: a BYE from here). With `--hold-music` a waiting
caller hears music (single notes, never a DTMF pair). A caller who hangs up while
waiting has abandoned. Every step is a line of the ACD log (JSON): queued, answered (with
the wait and the agent), abandoned (with the wait), ended (with the talk time): the ground
truth a journey drill's figures are held to, call by call.

The agent marker is followed by the answering group's key (its place among the groups,
1 to 9), so the caller knows who answered. A group may overflow (`--overflow sales=20:support`):
a caller who has waited that long in it may be taken by either group, whichever has an agent
free first, and keeps the place the first wait gave. A queue limit (`--queue-limit N`) turns
away a caller who would be the N+1st waiting in a group: the IVR plays the failure
announcement (marker `B`, the backup number) or offers a callback (marker `C`), as
`--when-full` says, and the caller hangs up. With `--inband` the markers are DTMF tones in
the audio instead of RFC 4733 events.

With `--registered GROUP --location-file FILE` that group's agents are the agents' phones in
the registrar's table (the sandbox SBC's, registrar.py), not the ACD's own: the caller at
the head of the queue is delivered to a free registered phone by an INVITE of its own (the
agent leg: signalling only, its offer inactive), and hears the agent marker once the phone
answered 200; a phone that refuses (486) or does not answer within AGENT_RING_LIMIT leaves
the caller at the head and is passed over for PASS_OVER s (or until it registers from elsewhere). The caller's BYE
(or the handle time) ends the agent leg with a BYE. The log's `answered` line names the
agent and the leg's Call-ID: the phones' own record of that call is held to it.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from harness.lab.registrar import read_location, uri_user
from harness.sip.answering import Call, PbxNode
from harness.sip.endpoint import run_forever
from harness.sip.message import SipMessage, host_port, token, uri_of
from harness.sip.dtmf import AGENT_MARKER, PROMPT_MARKER, event_packets, tone_payloads, ulaw_encode
from harness.sip.rtp import SAMPLES_PER_PACKET, SILENCE
from harness.sip.sdp import EVENTS_FMTP, PCMU, TELEPHONE_EVENT, Audio

TURN_AWAY = {"announcement": "B", "callback": "C"}  # the marker each way of turning away sends
AGENT_RING_LIMIT = 8.0  # s an agent's phone may ring before the caller is offered to another
PASS_OVER = 10.0  # s a phone that refused or did not answer is passed over (unless it moves)


@dataclass
class Group:
    name: str
    agents: int
    key: str = "1"                                            # sent after the agent marker
    overflow: tuple[float, str] | None = None                 # (after s, to group)
    waiting: list[str] = field(default_factory=list)          # Call-IDs, first come first
    busy: dict[str, str] = field(default_factory=dict)        # Call-ID -> agent


@dataclass
class Caller:
    state: str = "ivr"  # ivr, queued, agent
    since: float = 0.0  # when it entered that state
    hang_up_at: float = float("inf")  # the agent ends the call then (a handle time drawn)
    group: str = ""     # the group it queued in (and, once answered, the one that took it)
    agent: str = ""
    overflowed: bool = False
    leg: str = ""       # the agent leg's Call-ID (a registered agent's phone)


@dataclass
class Leg:
    """The ACD's INVITE to a registered agent's phone, for one caller."""
    caller: str
    agent: str
    group: str
    invite: SipMessage
    dest: tuple[str, int]
    sent: float
    to: str = ""        # the phone's To (with its tag) once it answered
    target: tuple[str, int] | None = None  # where in-dialog requests go (its 200's Contact)
    answered: bool = False


class AcdNode(PbxNode):
    def __init__(self, name: str, ip: str, port: int, groups: dict[str, int],
                 menu: dict[str, str], log_path: str, ivr_time: float = 5.0,
                 prompt_marker: str = PROMPT_MARKER, agent_marker: str = AGENT_MARKER,
                 overflow: dict[str, tuple[float, str]] | None = None,
                 queue_limit: int | None = None, when_full: str = "announcement",
                 inband: bool = False, handle: Callable[[], float] | None = None,
                 hold_music: bool = False, registered: str | None = None,
                 location_file: str | None = None, **kw):
        super().__init__(name, ip, port, **kw)
        self.registered, self.location_file = registered, location_file
        self.phones: dict[str, str] = {}        # registered agent -> its contact
        # agent -> (the contact that failed to answer, until when it is passed over)
        self.passed_over: dict[str, tuple[str, float]] = {}
        self.legs: dict[str, Leg] = {}          # agent leg Call-ID -> leg
        self._location_seen = 0.0
        overflow = overflow or {}
        self.groups = {g: Group(g, n, str(i), overflow.get(g))
                       for i, (g, n) in enumerate(groups.items(), 1)}
        self.first = next(iter(self.groups))
        self.menu, self.ivr_time = menu, ivr_time
        self.prompt_marker, self.agent_marker = prompt_marker, agent_marker
        self.queue_limit, self.when_full, self.inband = queue_limit, when_full, inband
        self.handle, self.hold_music = handle, hold_music
        self.music = itertools.cycle(hold_music_frames())
        self.callers: dict[str, Caller] = {}
        self.log = open(log_path, "a", buffering=1, encoding="utf-8")

    def answer_sdp(self, media_port: int, session_id: int) -> bytes:
        return Audio(self.ip, media_port, session_id, origin=self.name, session_name="acd",
                     codecs=(PCMU, TELEPHONE_EVENT), attributes=(EVENTS_FMTP,),
                     direction=None).encode()

    def _note(self, event: str, call_id: str, **more) -> None:
        self.log.write(json.dumps({"t": time.time(), "event": event, "call_id": call_id,
                                   **more}) + "\n")

    def _say(self, call: Call, keys: str) -> None:
        """Keys one after another, each 100 ms, each with its own RTP timestamp (the tick its
        first packet goes in; an end goes three times in one tick); or with `inband`, as DTMF
        tones in the audio, 100 ms apart."""
        if self.inband:
            for key in keys:
                call.outbox += tone_payloads(key, 100) + [SILENCE] * 5
            return
        ts = call.ts + len(call.outbox) * SAMPLES_PER_PACKET  # after what is still queued
        for key in keys:
            packets = event_packets(key, ms=100)
            call.outbox += [(m, e, ts) for m, e in packets]
            ts += (len(packets) - 2) * SAMPLES_PER_PACKET

    def acked(self, call: Call) -> None:
        self.callers[call.call_id] = Caller("ivr", time.time())
        self._say(call, self.prompt_marker)

    def tick(self, now: float) -> None:
        for call_id, c in list(self.callers.items()):
            call = self.calls.get(call_id)
            if call is None or c.state != "ivr":
                continue
            keys = call.events.begun  # a menu acts on a key's first packet
            if keys or now - c.since >= self.ivr_time:
                group = self.menu.get(keys[0].digit, self.first) if keys else self.first
                call.outbox.clear()  # barge-in: a key stops what is left of the prompt
                key = keys[0].digit if keys else ""
                if self.queue_limit is not None and len(self.groups[group].waiting) >= self.queue_limit:
                    c.state, c.since, c.group = "turned away", now, group
                    self._note("turned away", call_id, group=group, key=key, how=self.when_full)
                    self._say(call, TURN_AWAY[self.when_full])
                    continue
                c.state, c.since, c.group = "queued", now, group
                self.groups[group].waiting.append(call_id)
                self._note("queued", call_id, group=group, key=key)
        self._overflow(now)
        self._read_location()
        for g in self.groups.values():
            if g.name == self.registered:
                self._deliver(g, now)
                continue
            while g.waiting and len(g.busy) < g.agents:
                self._answer_next(g, now)
        for call_id, c in list(self.callers.items()):  # agents whose handle time is up
            if c.state == "agent" and now >= c.hang_up_at:
                call = self.calls.get(call_id)
                self._agent_free(call_id, c, now, by="agent")
                if call is not None:
                    self.hang_up(call)

    def _agent_free(self, call_id: str, c: Caller, now: float, by: str) -> None:
        if c.leg:
            self._end_leg(c.leg)
        self.callers.pop(call_id, None)
        self.groups[c.group].busy.pop(call_id, None)
        self._note("ended", call_id, group=c.group, agent=c.agent, talk=now - c.since, by=by)

    def idle_payload(self, call: Call) -> bytes:
        c = self.callers.get(call.call_id)
        if self.hold_music and c is not None and c.state == "queued":
            return next(self.music)
        return super().idle_payload(call)

    def _overflow(self, now: float) -> None:
        """Callers who waited long enough in a group with an overflow may be taken by the
        other group too, keeping their place (the time they began to wait)."""
        for g in self.groups.values():
            if g.overflow is None:
                continue
            after, to = g.overflow
            for call_id in g.waiting:
                c = self.callers[call_id]
                if not c.overflowed and now - c.since >= after:
                    c.overflowed = True
                    other = self.groups[to].waiting
                    other.insert(next((i for i, x in enumerate(other)
                                       if self.callers[x].since > c.since), len(other)), call_id)
                    self._note("overflowed", call_id, group=g.name, to=to, wait=now - c.since)

    def _answer_next(self, g: Group, now: float) -> None:
        call_id = g.waiting.pop(0)
        for other in self.groups.values():  # an overflowed caller waits in two queues
            if call_id in other.waiting:
                other.waiting.remove(call_id)
        c, call = self.callers[call_id], self.calls.get(call_id)
        agent = next(f"{g.name}-{i}" for i in range(1, g.agents + 1)
                     if f"{g.name}-{i}" not in g.busy.values())
        g.busy[call_id] = agent
        self._note("answered", call_id, group=g.name, agent=agent, wait=now - c.since,
                   overflowed=c.group != g.name)
        c.state, c.since, c.agent, c.group = "agent", now, agent, g.name
        if self.handle is not None:
            c.hang_up_at = now + self.handle()
        if call is not None:
            self._say(call, self.agent_marker + g.key)

    # -- registered agents' phones ---------------------------------------------------
    def _read_location(self) -> None:
        """The registrar's table, read again when the file changed (the phones it holds)."""
        if self.location_file is None:
            return
        try:
            changed = os.stat(self.location_file).st_mtime
        except FileNotFoundError:
            changed = 0.0
        if changed == self._location_seen and changed:
            return
        self._location_seen = changed
        table = read_location(self.location_file)
        self.phones = {uri_user(aor): e["contact"] for aor, e in table.items()}
        self.passed_over = {a: p for a, p in self.passed_over.items()
                            if self.phones.get(a) == p[0]}

    def _deliver(self, g: Group, now: float) -> None:
        """Callers at the head of the group's queue, each to a free registered phone."""
        for leg_id, leg in list(self.legs.items()):  # a phone that rang too long
            if not leg.answered and now - leg.sent > AGENT_RING_LIMIT:
                self._leg_failed(leg_id, leg, "no answer")
        ringing = {leg.agent for leg in self.legs.values()}
        free = [a for a in sorted(self.phones) if a not in g.busy.values() and a not in ringing
                and not (a in self.passed_over and now < self.passed_over[a][1])]
        waiting = [cid for cid in g.waiting if self.callers[cid].state == "queued"]
        for call_id, agent in zip(waiting, free):
            self._call_agent(g, call_id, agent, now)

    def _call_agent(self, g: Group, call_id: str, agent: str, now: float) -> None:
        contact = self.phones[agent]
        leg_id = f"leg-{token(12)}@{self.ip}"
        invite = SipMessage(method="INVITE", uri=contact)
        body = Audio(self.ip, 9, 1, origin=self.name, session_name="agent leg",
                     direction="inactive").encode()  # signalling only: no media on this leg
        invite.headers = [("Via", self.via()),
                          ("Max-Forwards", "70"),
                          ("From", f"<sip:{self.name}@{self.ip}:{self.port}>;tag={token(8)}"),
                          ("To", f"<{contact}>"), ("Call-ID", leg_id), ("CSeq", "1 INVITE"),
                          ("Contact", f"<sip:{self.name}@{self.ip}:{self.port}>"),
                          ("Content-Type", "application/sdp")]
        invite.body = body
        self.legs[leg_id] = Leg(call_id, agent, g.name, invite, host_port(contact), now)
        self.callers[call_id].state = "ringing agent"
        self.proto.send(invite, host_port(contact))

    def _leg_response(self, msg: SipMessage) -> None:
        leg = self.legs.get(msg.call_id)
        if leg is None or msg.cseq[1] != "INVITE" or msg.status < 200:
            return
        if msg.status >= 300:
            self._ack(leg, msg)
            self._leg_failed(msg.call_id, leg, f"{msg.status}")
            return
        leg.to = msg.get("to", "") or ""
        contact = uri_of(msg.get("contact", "") or "")
        leg.target = host_port(contact) if contact else leg.dest
        self._ack(leg, msg)  # a retransmitted 200 is ACKed again
        if leg.answered:
            return
        leg.answered = True
        c, call = self.callers.get(leg.caller), self.calls.get(leg.caller)
        if c is None or call is None:  # the caller hung up while the phone rang
            self._end_leg(msg.call_id)
            return
        g = self.groups[leg.group]
        for other in self.groups.values():
            if leg.caller in other.waiting:
                other.waiting.remove(leg.caller)
        now = time.time()
        g.busy[leg.caller] = leg.agent
        self._note("answered", leg.caller, group=g.name, agent=leg.agent, wait=now - c.since,
                   overflowed=c.group != g.name, leg=msg.call_id)
        c.state, c.since, c.agent, c.group, c.leg = "agent", now, leg.agent, g.name, msg.call_id
        if self.handle is not None:
            c.hang_up_at = now + self.handle()
        self._say(call, self.agent_marker + g.key)

    def _ack(self, leg: Leg, final: SipMessage) -> None:
        ack = SipMessage(method="ACK", uri=uri_of(final.get("contact", "") or "") or leg.invite.uri)
        ack.headers = [("Via", self.via()),
                       ("Max-Forwards", "70"), ("From", leg.invite.get("from") or ""),
                       ("To", final.get("to") or ""), ("Call-ID", final.call_id),
                       ("CSeq", "1 ACK")]
        self.proto.send(ack, leg.target or leg.dest)

    def _leg_failed(self, leg_id: str, leg: Leg, why: str) -> None:
        """The phone refused or did not answer: the caller waits on at the head, the phone is
        passed over until its registration changes."""
        self.legs.pop(leg_id, None)
        self.passed_over[leg.agent] = (self.phones.get(leg.agent, ""), time.time() + PASS_OVER)
        self._note("agent failed", leg.caller, agent=leg.agent, leg=leg_id, why=why)
        c = self.callers.get(leg.caller)
        if c is not None and c.state == "ringing agent":
            c.state = "queued"

    def _end_leg(self, leg_id: str) -> None:
        """BYE on an answered agent leg (or CANCEL on one still ringing)."""
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return
        if leg.answered:
            bye = SipMessage(method="BYE", uri=leg.invite.uri)
            bye.headers = [("Via", self.via()),
                           ("Max-Forwards", "70"), ("From", leg.invite.get("from") or ""),
                           ("To", leg.to), ("Call-ID", leg_id), ("CSeq", "2 BYE")]
            self.proto.send(bye, leg.target or leg.dest)
            return
        else:
            bye = SipMessage(method="CANCEL", uri=leg.invite.uri)
            bye.headers = [("Via", leg.invite.top_via), ("Max-Forwards", "70"),
                           ("From", leg.invite.get("from") or ""), ("To", leg.invite.get("to") or ""),
                           ("Call-ID", leg_id), ("CSeq", "1 CANCEL")]
        self.proto.send(bye, leg.dest)

    def handle(self, msg: SipMessage, addr) -> None:
        if not msg.is_request and msg.call_id in self.legs:
            self._leg_response(msg)
            return
        super().handle(msg, addr)

    def hung_up(self, call: Call) -> None:
        c = self.callers.pop(call.call_id, None)
        if c is None:
            return
        now = time.time()
        for leg_id in [k for k, leg in self.legs.items() if leg.caller == call.call_id]:
            self._end_leg(leg_id)
        if c.state in ("queued", "ringing agent"):
            for g in self.groups.values():
                if call.call_id in g.waiting:
                    g.waiting.remove(call.call_id)
            self._note("abandoned", call.call_id, group=c.group, wait=now - c.since)
        elif c.state == "agent":
            self._agent_free(call.call_id, c, now, by="caller")
        elif c.state == "ivr":
            self._note("left the IVR", call.call_id)

    def close(self):
        super().close()
        self.log.close()


@dataclass
class QueueSample:
    """What an ACD log says of its callers, for queueing theory: the arrival rate into the
    queue, the mean handle time (agent's marker to the caller's BYE), and per caller in
    arrival order whether they waited, how long, and whether they gave up."""
    rate: float
    handle: float
    waited: list[float]
    waits: list[float]
    gave_up: list[float]


def queue_sample(lines: list[str], skip_prefix: str = "hd-health-") -> QueueSample:
    log = [e for e in map(json.loads, lines) if not e["call_id"].startswith(skip_prefix)]
    queued = sorted((e for e in log if e["event"] == "queued"), key=lambda e: e["t"])
    outcome = {e["call_id"]: e for e in log if e["event"] in ("answered", "abandoned")}
    talks = [e["talk"] for e in log if e["event"] == "ended"]
    callers = [outcome[q["call_id"]] for q in queued if q["call_id"] in outcome]
    if len(queued) < 2 or not talks:
        raise ValueError("too few callers in the ACD log to say anything")
    span = queued[-1]["t"] - queued[0]["t"]
    return QueueSample(rate=(len(queued) - 1) / span, handle=sum(talks) / len(talks),
                       waited=[1.0 if c["wait"] > 0 else 0.0 for c in callers],
                       waits=[c["wait"] for c in callers],
                       gave_up=[1.0 if c["event"] == "abandoned" else 0.0 for c in callers])


def hold_music_frames() -> list[bytes]:
    """Four seconds of hold music as 20 ms µ-law payloads: single notes (never a DTMF pair,
    so a tone reader hears no key in it), half a second each, at a modest level."""
    frames = []
    for hz in (392.0, 440.0, 494.0, 523.3, 494.0, 440.0, 392.0, 330.0):
        samples = [int(6000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(4000)]
        frames += [bytes(ulaw_encode(x) for x in samples[i:i + 160]) for i in range(0, 4000, 160)]
    return frames


def _handle_sampler(spec: str) -> Callable[[], float]:
    """`exponential:MEAN` or `fixed:SECONDS`: the agents' handle time."""
    kind, _, value = spec.partition(":")
    try:
        v = float(value)
    except ValueError:
        raise SystemExit(f"--handle {spec}: write exponential:MEAN or fixed:SECONDS") from None
    if kind == "exponential" and v > 0:
        return lambda: random.expovariate(1 / v)
    if kind == "fixed" and v >= 0:
        return lambda: v
    raise SystemExit(f"--handle {spec}: write exponential:MEAN or fixed:SECONDS")


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise SystemExit(f"{what} {v!r}: write KEY=VALUE")
        out[key] = val
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True, help="ip:port")
    ap.add_argument("--group", action="append", required=True, metavar="NAME=AGENTS",
                    help="a skill group and its number of agents (repeatable; the first is "
                         "where a caller without a menu choice goes)")
    ap.add_argument("--menu", action="append", default=[], metavar="KEY=GROUP",
                    help="the IVR menu: the key that chooses a group (repeatable)")
    ap.add_argument("--ivr-time", type=float, default=5.0,
                    help="seconds the IVR waits for a key before queueing to the first group")
    ap.add_argument("--overflow", action="append", default=[], metavar="GROUP=SECONDS:TO",
                    help="after SECONDS waiting in GROUP a caller may be taken by group TO too")
    ap.add_argument("--queue-limit", type=int, help="callers waiting in a group before the "
                    "next is turned away")
    ap.add_argument("--when-full", choices=sorted(TURN_AWAY), default="announcement",
                    help="what a caller turned away hears: the failure announcement with the "
                         "backup number (marker B) or a callback offer (marker C)")
    ap.add_argument("--handle", metavar="exponential:MEAN|fixed:SECONDS",
                    help="the agents' handle time: an agent hangs up (BYE) when it is over; "
                         "none: the caller ends the call")
    ap.add_argument("--hold-music", action="store_true",
                    help="callers waiting hear music (G.711 audio) instead of silence")
    ap.add_argument("--inband", action="store_true",
                    help="send the markers as DTMF tones in the audio, not RFC 4733 events")
    ap.add_argument("--registered", metavar="GROUP", help="that group's agents are the phones "
                    "in the registrar's table (--location-file), each called in turn")
    ap.add_argument("--location-file", help="the registrar's location table (registrar.py)")
    ap.add_argument("--log", required=True, help="the ACD log (JSON lines), appended to")
    ap.add_argument("--stats-file")
    a = ap.parse_args(argv)
    groups = {k: int(v) for k, v in _pairs(a.group, "--group").items()}
    menu = _pairs(a.menu, "--menu")
    unknown = sorted(set(menu.values()) - set(groups))
    if unknown:
        raise SystemExit(f"--menu names group(s) {', '.join(unknown)} that no --group declares")
    if len(groups) > 9:
        raise SystemExit("at most 9 groups: each is named by one key after the agent marker")
    overflow = {}
    for g, v in _pairs(a.overflow, "--overflow").items():
        after, sep, to = v.partition(":")
        if not sep or g not in groups or to not in groups or to == g:
            raise SystemExit(f"--overflow {g}={v}: write GROUP=SECONDS:OTHER_GROUP, both declared")
        overflow[g] = (float(after), to)
    if a.registered and (a.registered not in groups or not a.location_file):
        raise SystemExit(f"--registered {a.registered}: name a declared --group and give "
                         "--location-file")
    ip, port = a.listen.rsplit(":", 1)
    node = AcdNode(a.name, ip, int(port), groups, menu, a.log, a.ivr_time,
                   overflow=overflow, queue_limit=a.queue_limit, when_full=a.when_full,
                   inband=a.inband, hold_music=a.hold_music,
                   handle=_handle_sampler(a.handle) if a.handle else None,
                   registered=a.registered, location_file=a.location_file,
                   ring_delay=0.0, answer_delay=0.02, stats_file=a.stats_file)
    run_forever(node.start)


if __name__ == "__main__":
    main()
