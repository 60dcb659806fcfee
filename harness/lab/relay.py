"""A carrier path: a UDP relay between callers and the SBC, with impairments.

Each caller address gets its own upstream socket, so the SBC sees one source
per caller and its responses find their way back (RFC 3581 rport). Killing
or pausing this process cuts the carrier, as a trunk failure would; toxics
(see toxics.py) added through the control channel degrade it.

The relay also carries the media of the calls that enter through it, as a
carrier's network does: it anchors their RTP (media_anchor.py), rewriting the
SDP of INVITEs and 2xx answers that pass, so the same toxics that degrade the
signalling degrade those calls' audio, and no other carrier's.

Control channel (control.py): one JSON object per line, e.g.
{"op": "add", "toxic": {"name": "x", "type": "loss", "ratio": 0.3}},
{"op": "remove", "name": "x"}, {"op": "list"}.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

from pydantic import ValidationError

from harness.lab.control import json_lines_server
from harness.lab.media_anchor import MediaAnchor
from harness.sip.endpoint import bad_input, run_forever
from harness.lab.toxics import Pipeline, Toxic
from harness.sip.message import SipMessage, local_ip_for, parse

log = logging.getLogger("relay")
IDLE = 120.0


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay", client):
        self.relay, self.client = relay, client
        self.transport = None
        self.last = time.monotonic()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.last = time.monotonic()
        data = self.relay.signalling("downstream", data)
        self.relay.emit("downstream", data, lambda d: self.relay.downstream.sendto(d, self.client))

    def error_received(self, exc):
        pass


class _Downstream(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay"):
        self.relay = relay

    def datagram_received(self, data, addr):
        asyncio.get_running_loop().create_task(self.relay.forward(data, addr))

    def error_received(self, exc):
        pass


class Relay:
    def __init__(self, name: str, listen: tuple[str, int], upstream: tuple[str, int],
                 control: tuple[str, int] | None = None, seed: int | None = None,
                 token: str | None = None):
        self.name, self.listen, self.upstream = name, listen, upstream
        self.control = control
        self.token = token  # when set, a control request without it is refused
        self.pipeline = Pipeline(seed)
        # the upstream side speaks from our address on the route to the SBC
        self.upstream_ip = listen[0] if upstream[0].startswith("127.") else local_ip_for(upstream[0])
        self.flows: dict[tuple, _Upstream] = {}
        self.opening: dict[tuple, asyncio.Future] = {}
        self.downstream = None
        self.media = MediaAnchor(listen[0], self.upstream_ip, forward=self.emit)

    async def start(self):
        loop = asyncio.get_running_loop()
        self.downstream, _ = await loop.create_datagram_endpoint(
            lambda: _Downstream(self), local_addr=self.listen)
        asyncio.create_task(self._expire())
        asyncio.create_task(self.media.expire_forever())
        if self.control:
            await asyncio.start_server(json_lines_server(self.command, self.token),
                                       *self.control)
        log.info("%s relaying %s:%d -> %s:%d", self.name, *self.listen, *self.upstream)
        return self

    async def forward(self, data: bytes, client) -> None:
        flow = self.flows.get(client)
        if flow is None:
            pending = self.opening.get(client)
            if pending is None:  # first datagram of a new caller: open its upstream socket
                loop = asyncio.get_running_loop()
                pending = self.opening[client] = asyncio.ensure_future(loop.create_datagram_endpoint(
                    lambda: _Upstream(self, client), local_addr=(self.upstream_ip, 0),
                    remote_addr=self.upstream))
            _, flow = await asyncio.shield(pending)
            self.flows[client] = flow
            self.opening.pop(client, None)
        flow.last = time.monotonic()
        self.emit("upstream", self.signalling("upstream", data), flow.transport.sendto)

    def signalling(self, stream: str, data: bytes) -> bytes:
        """Anchor the media of calls set up through us: rewrite the SDP of an INVITE going
        up and of a 2xx coming down; forget a call's media at its BYE or failure."""
        if not data.startswith((b"INVITE ", b"BYE ", b"CANCEL ", b"SIP/2.0 ")):
            return data
        try:
            msg = parse(data)
            return self._anchor(stream, msg) or data
        except Exception as exc:  # not ours to judge: pass it on unchanged
            bad_input("message", self.name, exc)
            return data

    def _anchor(self, stream: str, msg: SipMessage) -> bytes | None:
        call_id = msg.call_id
        if msg.is_request:
            if msg.method == "INVITE" and stream == "upstream" and msg.body \
                    and "tag=" not in (msg.get("to") or ""):
                msg.body = self.media.offer(call_id, msg.body)
                return msg.to_bytes()
            if msg.method in ("BYE", "CANCEL"):
                self.media.end(call_id)
            return None
        if msg.cseq[1] != "INVITE" or msg.status < 200:
            return None
        if msg.status >= 300:
            self.media.end(call_id)
            return None
        if msg.body and stream == "downstream":
            msg.body = self.media.answer(call_id, msg.body)
            return msg.to_bytes()
        return None

    def emit(self, stream: str, data: bytes, send) -> None:
        """Send `data` as the toxics decide: dropped, delayed, or more than once."""
        verdict = self.pipeline.decide(stream, len(data), time.monotonic())
        loop = asyncio.get_running_loop()
        for delay in verdict.delays:
            if delay <= 0:
                send(data)
            else:
                loop.call_later(delay, self._late_send, send, data)

    @staticmethod
    def _late_send(send, data: bytes) -> None:
        try:
            send(data)
        except (OSError, AttributeError):  # the flow closed meanwhile
            pass

    def command(self, req: dict) -> dict:
        op = req.get("op")
        if op == "list":
            return {"ok": True, "toxics": [t.model_dump() for t in self.pipeline.toxics.values()]}
        if op == "add":
            try:
                toxic = Toxic.model_validate(req.get("toxic") or {})
                self.pipeline.add(toxic)
            except (ValidationError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}
            log.info("%s: toxic added: %s", self.name, toxic.model_dump(exclude_defaults=True))
            return {"ok": True}
        if op == "remove":
            removed = self.pipeline.remove(str(req.get("name")))
            log.info("%s: toxic %s removed (%s)", self.name, req.get("name"), removed)
            return {"ok": True, "removed": removed}
        return {"ok": False, "error": f"unknown op {op!r}; use list, add or remove"}

    async def _expire(self):
        while True:
            await asyncio.sleep(10)
            now = time.monotonic()
            for client, flow in list(self.flows.items()):
                if now - flow.last > IDLE:
                    flow.transport.close()
                    del self.flows[client]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True, help="ip:port")
    ap.add_argument("--upstream", required=True, help="ip:port of the SBC")
    ap.add_argument("--control", help="ip:port of the JSON-lines control channel (TCP)")
    ap.add_argument("--seed", type=int, help="seed of the toxics' random choices")
    ap.add_argument("--token-file", help="a file holding the token every control request "
                                         "must carry (without it, the channel is open)")
    a = ap.parse_args(argv)
    lip, lport = a.listen.rsplit(":", 1)
    uip, uport = a.upstream.rsplit(":", 1)
    control = None
    if a.control:
        cip, cport = a.control.rsplit(":", 1)
        control = (cip, int(cport))
    token = Path(a.token_file).read_text().strip() if a.token_file else None
    run_forever(Relay(a.name, (lip, int(lport)), (uip, int(uport)), control, a.seed, token).start)


if __name__ == "__main__":
    main()
