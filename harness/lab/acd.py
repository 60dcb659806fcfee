"""Sandbox contact centre: an IVR, a menu, queues of skill groups, agents, and its own ACD log.

Run as its own process, like a PBX node (it is one, with a queue behind its answer):
`python -m harness.lab.acd --name acd-1 --listen 127.10.0.31:5060 --group 1=3 --log acd.jsonl`.

A call is answered at once (the IVR's 200 comes whether or not anyone will be reached), and
once ACKed it hears the IVR's prompt marker, an RFC 4733 key (default `A`). The caller's
first key chooses the skill group (`--menu 1=sales`; a key not in the menu, or none within
the IVR's time, goes to the first group). The caller then waits in that group's queue,
first come first served, until one of its agents is free: the agent answers with the agent
marker (default `D`), and is busy until the caller hangs up. A caller who hangs up while
waiting has abandoned. Every step is a line of the ACD log (JSON): queued, answered (with
the wait and the agent), abandoned (with the wait), ended (with the talk time): the ground
truth a journey drill's figures are held to, call by call.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field

from harness.lab.pbx import Call, PbxNode
from harness.lab.sip_endpoint import run_forever
from harness.sip.dtmf import event_packets
from harness.sip.sdp import EVENTS_FMTP, PCMU, TELEPHONE_EVENT, Audio


@dataclass
class Group:
    name: str
    agents: int
    waiting: list[str] = field(default_factory=list)          # Call-IDs, first come first
    busy: dict[str, str] = field(default_factory=dict)        # Call-ID -> agent


@dataclass
class Caller:
    state: str = "ivr"  # ivr, queued, agent
    since: float = 0.0  # when it entered that state
    group: str = ""
    agent: str = ""


class AcdNode(PbxNode):
    def __init__(self, name: str, ip: str, port: int, groups: dict[str, int],
                 menu: dict[str, str], log_path: str, ivr_time: float = 5.0,
                 prompt_marker: str = "A", agent_marker: str = "D", **kw):
        super().__init__(name, ip, port, **kw)
        self.groups = {g: Group(g, n) for g, n in groups.items()}
        self.first = next(iter(self.groups))
        self.menu, self.ivr_time = menu, ivr_time
        self.prompt_marker, self.agent_marker = prompt_marker, agent_marker
        self.callers: dict[str, Caller] = {}
        self.log = open(log_path, "a", buffering=1, encoding="utf-8")

    def answer_sdp(self, media_port: int, session_id: int) -> bytes:
        return Audio(self.ip, media_port, session_id, origin=self.name, session_name="acd",
                     codecs=(PCMU, TELEPHONE_EVENT), attributes=(EVENTS_FMTP,),
                     direction=None).encode()

    def _note(self, event: str, call_id: str, **more) -> None:
        self.log.write(json.dumps({"t": time.time(), "event": event, "call_id": call_id,
                                   **more}) + "\n")

    def _say(self, call: Call, key: str) -> None:
        call.outbox += [(m, e, call.ts) for m, e in event_packets(key, ms=100)]

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
                c.state, c.since, c.group = "queued", now, group
                call.outbox.clear()  # barge-in: a key stops what is left of the prompt
                self.groups[group].waiting.append(call_id)
                self._note("queued", call_id, group=group, key=keys[0].digit if keys else "")
        for g in self.groups.values():
            while g.waiting and len(g.busy) < g.agents:
                call_id = g.waiting.pop(0)
                c, call = self.callers[call_id], self.calls.get(call_id)
                agent = next(f"{g.name}-{i}" for i in range(1, g.agents + 1)
                             if f"{g.name}-{i}" not in g.busy.values())
                g.busy[call_id] = agent
                self._note("answered", call_id, group=g.name, agent=agent, wait=now - c.since)
                c.state, c.since, c.agent = "agent", now, agent
                if call is not None:
                    self._say(call, self.agent_marker)

    def hung_up(self, call: Call) -> None:
        c = self.callers.pop(call.call_id, None)
        if c is None:
            return
        now = time.time()
        if c.state == "queued":
            self.groups[c.group].waiting.remove(call.call_id)
            self._note("abandoned", call.call_id, group=c.group, wait=now - c.since)
        elif c.state == "agent":
            self.groups[c.group].busy.pop(call.call_id, None)
            self._note("ended", call.call_id, group=c.group, agent=c.agent, talk=now - c.since)
        else:
            self._note("left the IVR", call.call_id)

    def close(self):
        super().close()
        self.log.close()


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
    ap.add_argument("--log", required=True, help="the ACD log (JSON lines), appended to")
    ap.add_argument("--stats-file")
    a = ap.parse_args(argv)
    groups = {k: int(v) for k, v in _pairs(a.group, "--group").items()}
    menu = _pairs(a.menu, "--menu")
    unknown = sorted(set(menu.values()) - set(groups))
    if unknown:
        raise SystemExit(f"--menu names group(s) {', '.join(unknown)} that no --group declares")
    ip, port = a.listen.rsplit(":", 1)
    node = AcdNode(a.name, ip, int(port), groups, menu, a.log, a.ivr_time,
                   ring_delay=0.0, answer_delay=0.02, stats_file=a.stats_file)
    run_forever(node.start)


if __name__ == "__main__":
    main()
