"""A carrier path: a UDP relay between callers and the SBC.

Each caller address gets its own upstream socket, so the SBC sees one source
per caller and its responses find their way back (RFC 3581 rport). Killing
or pausing this process cuts the carrier, as a trunk failure would.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time

from harness.lab.sip_endpoint import run_forever

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
        self.relay.downstream.sendto(data, self.client)

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
    def __init__(self, name: str, listen: tuple[str, int], upstream: tuple[str, int]):
        self.name, self.listen, self.upstream = name, listen, upstream
        self.flows: dict[tuple, _Upstream] = {}
        self.opening: dict[tuple, asyncio.Future] = {}
        self.downstream = None

    async def start(self):
        loop = asyncio.get_running_loop()
        self.downstream, _ = await loop.create_datagram_endpoint(
            lambda: _Downstream(self), local_addr=self.listen)
        asyncio.create_task(self._expire())
        log.info("%s relaying %s:%d -> %s:%d", self.name, *self.listen, *self.upstream)
        return self

    async def forward(self, data: bytes, client) -> None:
        flow = self.flows.get(client)
        if flow is None:
            pending = self.opening.get(client)
            if pending is None:  # first datagram of a new caller: open its upstream socket
                loop = asyncio.get_running_loop()
                pending = self.opening[client] = asyncio.ensure_future(loop.create_datagram_endpoint(
                    lambda: _Upstream(self, client), local_addr=(self.listen[0], 0),
                    remote_addr=self.upstream))
            _, flow = await asyncio.shield(pending)
            self.flows[client] = flow
            self.opening.pop(client, None)
        flow.last = time.monotonic()
        flow.transport.sendto(data)

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
    a = ap.parse_args(argv)
    lip, lport = a.listen.rsplit(":", 1)
    uip, uport = a.upstream.rsplit(":", 1)
    run_forever(Relay(a.name, (lip, int(lport)), (uip, int(uport))).start)


if __name__ == "__main__":
    main()
