"""The one SIP transport seam of the caller's side: UDP and TCP, with room for TLS.

Everything that sends SIP from the harness (the UAC's calls, the OPTIONS probe) opens a
`Transport` here and knows nothing else of sockets: what goes in the Via and Contact, how
a message is framed, whether requests are retransmitted (RFC 3261 §17.1.1.2: not over a
reliable transport), how a closed connection shows. TLS is one more subclass of the
stream transport (a wrapped socket), and nothing above this module changes for it.

Messages are timed by the kernel's receive stamp (arrival.py), not when they are read.
"""
from __future__ import annotations

import socket
import time
from typing import ClassVar

from harness.sip.arrival import receive as receive_stamped, stamp_arrivals
from harness.sip.framing import split_stream
from harness.sip.message import SipMessage, SipParseError, parse


class TransportClosed(ConnectionResetError):
    """The peer closed a stream transport's connection."""


def _parsed(data: bytes, arrival: float) -> SipMessage | None:
    """A message with its kernel arrival stamp; None for bytes that are not SIP."""
    try:
        msg = parse(data)
    except SipParseError:
        return None
    msg.received_at = arrival
    return msg


class Transport:
    """One local socket for SIP, bound to `ip` (and, for a stream, connected to `remote`)."""

    name: ClassVar[str]       # as an inventory says it: udp, tcp
    via: ClassVar[str]        # as a Via header says it: UDP, TCP
    reliable: ClassVar[bool]  # no retransmission of requests (RFC 3261 §17.1.1.2)

    def __init__(self, sock: socket.socket):
        self.sock = sock
        stamp_arrivals(sock)  # responses are timed when they arrive, not when read
        self.ip, self.port = sock.getsockname()[:2]
        self.closed = False  # a stream's peer closed the connection
        self.refused = False  # the last read met an ICMP port unreachable (UDP: no one there)

    @property
    def uri_param(self) -> str:
        """What a Contact or Request-URI adds so replies come back over this transport."""
        return "" if self.name == "udp" else f";transport={self.name}"

    def via_value(self, branch: str) -> str:
        return f"SIP/2.0/{self.via} {self.ip}:{self.port};branch={branch};rport"

    def send(self, msg: SipMessage, dest: tuple[str, int]) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> tuple[bytes, float]:
        """One message's bytes and when they arrived; socket.timeout when none came (a
        timeout of 0 reads only what is there), TransportClosed when the peer closed."""
        raise NotImplementedError

    def receive(self, deadline: float) -> SipMessage | None:
        """The next SIP message; None when the deadline passes, the connection closed, or an
        ICMP port unreachable came back (`refused`)."""
        while True:
            left = deadline - time.time()
            if left <= 0 or self.closed:
                return None
            try:
                data, arrival = self.read(left)
            except ConnectionRefusedError:
                self.refused = True  # the caller decides: wait on, or take it as "no one there"
                return None
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True  # never spin on a dead connection: it would starve the others
                return None
            msg = _parsed(data, arrival)
            if msg is not None:
                return msg

    def waiting(self) -> list[SipMessage]:
        """Every message already received and not read yet, without waiting."""
        out = []
        while not self.closed:
            try:
                data, arrival = self.read(0.0)
            except (BlockingIOError, InterruptedError, socket.timeout, ConnectionRefusedError):
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            msg = _parsed(data, arrival)
            if msg is not None:
                out.append(msg)
        return out

    def close(self) -> None:
        self.sock.close()


class UdpTransport(Transport):
    name, via, reliable = "udp", "UDP", False

    @classmethod
    def open(cls, remote: tuple[str, int], local_ip: str, timeout: float) -> "UdpTransport":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((local_ip, 0))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def send(self, msg: SipMessage, dest: tuple[str, int]) -> None:
        self.sock.sendto(msg.to_bytes(), dest)

    def read(self, timeout: float) -> tuple[bytes, float]:
        self.sock.settimeout(timeout)
        data, _, arrival = receive_stamped(self.sock)
        return data, arrival


class TcpTransport(Transport):
    """One connection to the next hop carries the dialog; messages framed by Content-Length
    (RFC 3261 §18.3). A subclass that wraps the socket (TLS) inherits all of it."""

    name, via, reliable = "tcp", "TCP", True

    def __init__(self, sock: socket.socket):
        super().__init__(sock)
        self.buf = b""
        self.buf_arrival = 0.0  # when the bytes that completed the next framed message came

    @classmethod
    def open(cls, remote: tuple[str, int], local_ip: str, timeout: float) -> "TcpTransport":
        return cls(socket.create_connection(remote, timeout=timeout, source_address=(local_ip, 0)))

    def send(self, msg: SipMessage, dest: tuple[str, int] | None = None) -> None:
        self.sock.sendall(msg.to_bytes())  # the connection is the destination

    def read(self, timeout: float) -> tuple[bytes, float]:
        self.sock.settimeout(timeout)
        while True:
            messages, rest = split_stream(self.buf)
            if messages:
                self.buf = rest + b"".join(messages[1:])
                return messages[0], self.buf_arrival
            chunk, _, self.buf_arrival = receive_stamped(self.sock)
            if not chunk:
                raise TransportClosed("peer closed the connection")
            self.buf += chunk


TRANSPORTS: dict[str, type[Transport]] = {t.name: t for t in (UdpTransport, TcpTransport)}


def open_transport(name: str, remote: tuple[str, int], local_ip: str,
                   timeout: float) -> Transport:
    """A transport to `remote` from `local_ip`; OSError when it cannot be opened (a stream's
    connection refused or timed out within `timeout`)."""
    try:
        kind = TRANSPORTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown SIP transport {name!r} (known: {', '.join(TRANSPORTS)})") \
            from None
    return kind.open(remote, local_ip, timeout)
