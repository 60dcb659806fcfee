"""Where agents' phones take their calls: the INVITEs that reach a phone's registered flow are
answered here, one engine for all the drill's phones (the sandbox PBX's answering side, with
its RTP and receiver reports, so the caller measures voice as with any PBX), on an event loop
of its own. An agent rings for the scenario's ring time, answers 200 naming itself in the
Contact (`sip:<agent>@<desk>`, so the caller's record names the agent), sends the agent
marker after the ACK, talks until the caller hangs up, and is then free; an agent on a call
answers a second INVITE 486 Busy Here, and a call cancelled while it rings leaves it free. Every answer is kept
(`answered`): the ground truth a drill's calls delivered to agents are held to, call by call.

Why the PBX node and not a SIP library: the harness's callers and the practice PBX already
speak this SIP and RTP, with the receiver reports the caller's voice figures read.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from harness.sip.answering import Call, PbxNode
from harness.sip.dtmf import AGENT_MARKER, event_packets
from harness.sip.message import SipMessage, response_to

log = logging.getLogger("agents")


@dataclass
class Answered:
    """One call an agent answered: the phone's side of the ground truth."""
    call_id: str
    agent: str
    at: float
    ended_at: float | None = None  # the caller's BYE came


class AgentDesk(PbxNode):
    def __init__(self, ip: str, ring: float,
                 on_answer: Callable[[Answered], None] = lambda a: None):
        super().__init__("agents", ip, 0, ring_delay=0.0, answer_delay=ring, stats_file=None)
        self.on_answer = on_answer
        self.agent_of: dict[str, str] = {}  # Call-ID -> the agent whose flow it reached
        self.talking: dict[str, str] = {}   # agent -> Call-ID of the call it is on (or ringing)
        self.answered: dict[str, Answered] = {}
        self.busy_refused = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- the desk's own loop -------------------------------------------------------
    def open(self, within: float = 5.0) -> "AgentDesk":
        """Start the loop on a thread of its own; return once the desk listens."""
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self.start())
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="agent-desk")
        self._thread.start()
        if not ready.wait(within):
            raise RuntimeError("the agents' desk did not start listening")
        return self

    async def start(self):
        await super().start()
        self.port = self.proto.transport.get_extra_info("sockname")[1]
        self.contact = f"{self.ip}:{self.port}"
        return self

    def shut(self, within: float = 2.0) -> None:
        """End the loop (calls still up are left to the callers' own timers)."""
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(within)
        self.close()

    def deliver(self, msg: SipMessage, agent: str, addr: tuple[str, int]) -> None:
        """A request that reached `agent`'s flow (from a phone's thread): handled on the loop."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._delivered, msg, agent, addr)

    def _delivered(self, msg: SipMessage, agent: str, addr) -> None:
        if msg.method == "INVITE" and msg.call_id not in self.calls \
                and msg.call_id not in self.ringing:
            on = self.talking.get(agent)
            if on is not None and on != msg.call_id:
                self.busy_refused += 1
                self.proto.send(response_to(msg, 486, "Busy Here", to_tag="busy"), addr)
                return
            self.talking[agent] = msg.call_id
            self.agent_of[msg.call_id] = agent
        self.handle(msg, addr)

    # -- the PBX node's hooks ------------------------------------------------------
    def took(self, call: Call) -> None:
        agent = self.agent_of.get(call.call_id, "")
        self.answered[call.call_id] = a = Answered(call.call_id, agent, time.time())
        try:
            self.on_answer(a)
        except Exception:  # the record is kept here; the call is answered all the same
            log.exception("the answer of %s could not be passed on", call.call_id)

    def contact_user(self, invite: SipMessage) -> str:
        return self.agent_of.get(invite.call_id, self.name)

    def rang_out(self, call_id: str) -> None:
        self._ended(call_id)

    def acked(self, call: Call) -> None:
        packets = event_packets(AGENT_MARKER, ms=100)
        call.outbox += [(m, e, call.ts) for m, e in packets]

    def hung_up(self, call: Call) -> None:
        self._ended(call.call_id)

    def _ended(self, call_id: str) -> None:
        a = self.answered.get(call_id)
        if a is not None and a.ended_at is None:
            a.ended_at = time.time()
        agent = self.agent_of.get(call_id, "")
        if self.talking.get(agent) == call_id:
            del self.talking[agent]

