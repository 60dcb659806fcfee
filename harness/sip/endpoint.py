"""SIP endpoints for asyncio over UDP and TCP: parse each message, hand it to a handler.

Shared by the sandbox PBX node and SBC, which run as their own OS processes so
that fault injectors can signal them like any real server. Over TCP a message
is framed by its Content-Length (RFC 3261 §18.3); responses and requests for a
peer that reached us over TCP go back on that peer's connection.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
import time

from harness.sip.framing import MAX_MESSAGE, split_stream
from harness.sip.message import SipMessage, checked_address, parse

log = logging.getLogger("sandbox")


class BadInput:
    """One log line per bad message, never a traceback, at most `burst` lines every
    `every` seconds (a flood would otherwise fill the disk); the rest are counted."""

    def __init__(self, burst: int = 5, every: float = 10.0):
        self.burst, self.every = burst, every
        self.window, self.lines, self.hidden = 0.0, 0, 0

    def __call__(self, what: str, peer, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.window >= self.every:
            if self.hidden:
                log.warning("%d more bad messages in the last %gs (not logged)", self.hidden, self.every)
            self.window, self.lines, self.hidden = now, 0, 0
        if self.lines < self.burst:
            self.lines += 1
            log.warning("bad %s from %s: %s: %s", what, peer, type(exc).__name__, str(exc)[:200])
        else:
            self.hidden += 1


bad_input = BadInput()


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
        except Exception as exc:  # whatever the bytes, one line at most
            bad_input("datagram", addr, exc)
            return
        try:
            self.handler(msg, addr)
        except Exception as exc:  # one bad message must not kill the server
            bad_input(f"{msg.method or msg.status}", addr, exc)

    def error_received(self, exc):  # ICMP port unreachable from a dead peer
        log.debug("udp error: %s", exc)

    def send(self, msg: SipMessage, addr) -> None:
        if self.transport is None:
            return
        try:
            # an address from a header (Via, Contact) is checked first: a port out of range
            # raised inside sendto would close this transport for good
            self.transport.sendto(msg.to_bytes(), checked_address(*addr[:2]))
        except (ValueError, TypeError, OSError, OverflowError) as exc:
            bad_input("destination", addr, exc)


class SipTcp:
    """A TCP (or, with an SSL context, TLS) listener; remembers each peer's connection so
    replies can find it."""

    def __init__(self, handler, ssl_context=None):
        self.handler = handler
        self.ssl = ssl_context
        self.conns: dict[tuple, asyncio.StreamWriter] = {}

    async def serve(self, ip: str, port: int):
        return await asyncio.start_server(self._conn, ip, port, ssl=self.ssl)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[:2]
        self.conns[peer] = writer
        buf = b""
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                messages, buf = split_stream(buf)
                for raw in messages:
                    try:
                        msg = parse(raw)
                    except Exception as exc:
                        bad_input("message", peer, exc)
                        continue
                    try:
                        self.handler(msg, peer)
                    except Exception as exc:
                        bad_input(f"{msg.method or msg.status}", peer, exc)
                if len(buf) > MAX_MESSAGE:
                    break  # garbage or an attack: drop the connection
        except (ConnectionError, OSError):
            pass  # the peer went away mid-message
        finally:
            self.conns.pop(peer, None)
            writer.close()

    def send(self, msg: SipMessage, addr) -> bool:
        writer = self.conns.get(tuple(addr))
        if writer is None:
            return False
        writer.write(msg.to_bytes())
        return True


class SipTransports:
    """UDP and TCP on one address (and TLS on another port, given a context); `send` uses the
    peer's stream connection if it has one."""

    def __init__(self, handler, ssl_context=None):
        self.udp = SipUdp(handler)
        self.tcp = SipTcp(handler)
        self.tls = SipTcp(handler, ssl_context) if ssl_context is not None else None

    async def listen(self, ip: str, port: int, tcp: bool = True, tls_port: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.udp, local_addr=(ip, port))
        if tcp:
            await self.tcp.serve(ip, port)
        if self.tls is not None and tls_port:
            await self.tls.serve(ip, tls_port)

    def streamed(self, addr) -> bool:
        """`addr` reached us over a stream connection (TCP or TLS) that is still open."""
        return tuple(addr) in self.tcp.conns or (self.tls is not None and tuple(addr) in self.tls.conns)

    def send(self, msg: SipMessage, addr) -> None:
        if not self.tcp.send(msg, addr) and not (self.tls is not None and self.tls.send(msg, addr)):
            self.udp.send(msg, addr)

    def via(self, addr, ip: str, port: int, branch: str) -> str:
        """The Via a request to `addr` carries: the transport `send` will use for it."""
        proto = "TCP" if tuple(addr) in self.tcp.conns else \
            "TLS" if self.tls is not None and tuple(addr) in self.tls.conns else "UDP"
        return f"SIP/2.0/{proto} {ip}:{port};branch={branch}"


def run_forever(main) -> None:
    """Run a server coroutine until SIGTERM/SIGINT; used by the node processes."""
    # a socket per call in progress: the soft open-file limit (often 1,024) would turn a
    # flood of INVITEs into 503s long before the hard limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
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
