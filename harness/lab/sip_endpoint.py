"""A UDP SIP endpoint for asyncio: parse each datagram, hand it to a handler.

Shared by the sandbox PBX node and SBC, which run as their own OS processes so
that fault injectors can signal them like any real server.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys

from harness.sip.message import SipMessage, SipParseError, parse

log = logging.getLogger("sandbox")


class SipUdp(asyncio.DatagramProtocol):
    def __init__(self, handler):
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if data in (b"\r\n\r\n", b"\r\n", b"\x00\x00\x00\x00"):  # keepalives
            return
        try:
            msg = parse(data)
        except (SipParseError, ValueError) as exc:
            log.debug("unparseable datagram from %s: %s", addr, exc)
            return
        try:
            self.handler(msg, addr)
        except Exception:  # one bad message must not kill the server
            log.exception("handling %s from %s", msg.method or msg.status, addr)

    def error_received(self, exc):  # ICMP port unreachable from a dead peer
        log.debug("udp error: %s", exc)

    def send(self, msg: SipMessage, addr) -> None:
        if self.transport is not None:
            self.transport.sendto(msg.to_bytes(), addr)


def run_forever(main) -> None:
    """Run a server coroutine until SIGTERM/SIGINT; used by the node processes."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")

    async def runner():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await main()
        await stop.wait()
        close = getattr(server, "close", None)
        if close:
            close()

    asyncio.run(runner())
