"""The one SIP transport seam of the caller's side: UDP, TCP and TLS.

Everything that sends SIP from the harness (the UAC's calls, the OPTIONS probe) opens a
`Transport` here and knows nothing else of sockets: what goes in the Via and Contact, how
a message is framed, whether requests are retransmitted (RFC 3261 §17.1.1.2: not over a
reliable transport), how a closed connection shows. TLS is one more subclass of the
stream transport (a wrapped socket), and nothing above this module changes for it.

Messages are timed by the kernel's receive stamp (arrival.py), not when they are read;
over TLS the stamp is taken when the record is decrypted (the ssl module reads the socket
itself), a few microseconds later.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import ClassVar

from harness.sip.arrival import receive as receive_stamped, stamp_arrivals
from harness.sip.framing import split_stream
from harness.sip.message import SipMessage, SipParseError, parse


class TransportClosed(ConnectionResetError):
    """The peer closed a stream transport's connection."""


def stamped_message(data: bytes, arrival: float) -> SipMessage | None:
    """A message with its kernel arrival stamp; None for bytes that are not SIP."""
    try:
        msg = parse(data)
    except SipParseError:
        return None
    msg.received_at = arrival
    return msg


class Transport:
    """One local socket for SIP, bound to `ip` (and, for a stream, connected to `remote`)."""

    name: ClassVar[str]       # as an inventory says it: udp, tcp, tls
    via: ClassVar[str]        # as a Via header says it: UDP, TCP, TLS
    reliable: ClassVar[bool]  # no retransmission of requests (RFC 3261 §17.1.1.2)
    handshake: float | None = None  # seconds the TLS handshake took (TLS only)

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
            msg = stamped_message(data, arrival)
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
            msg = stamped_message(data, arrival)
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


@dataclass(frozen=True)
class TlsSettings:
    """How a TLS connection to an entry point is checked (RFC 5630 §3: the server's certificate
    against `ca_file`, or the system's CAs, and `server_name`, which is also sent as SNI)."""

    ca_file: str | None = None
    verify: bool = True
    server_name: str | None = None  # None: the address's host
    cert_file: str | None = None    # our certificate, for mutual TLS
    key_file: str | None = None
    reuse: bool = True  # the calls share one long-lived connection (trunk.py); False: one each

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class TcpTransport(Transport):
    """One connection to the next hop carries the dialog; messages framed by Content-Length
    (RFC 3261 §18.3). A subclass that wraps the socket (TLS) inherits all of it."""

    name, via, reliable = "tcp", "TCP", True

    def __init__(self, sock: socket.socket):
        super().__init__(sock)
        self.buf = b""
        self.buf_arrival = 0.0  # when the bytes that completed the next framed message came

    @classmethod
    def open(cls, remote: tuple[str, int], local_ip: str, timeout: float,
             tls: TlsSettings | None = None) -> "TcpTransport":
        return cls(socket.create_connection(remote, timeout=timeout, source_address=(local_ip, 0)))

    def send(self, msg: SipMessage, dest: tuple[str, int] | None = None) -> None:
        self.sock.sendall(msg.to_bytes())  # the connection is the destination

    def read(self, timeout: float) -> tuple[bytes, float]:
        self.sock.settimeout(timeout)
        while True:
            messages, rest = split_stream(self.buf)
            if messages:
                self.buf = b"".join(messages[1:]) + rest  # the rest is what comes last
                return messages[0], self.buf_arrival
            chunk, self.buf_arrival = self._chunk()
            if not chunk:
                raise TransportClosed("peer closed the connection")
            self.buf += chunk

    def _chunk(self) -> tuple[bytes, float]:
        chunk, _, arrival = receive_stamped(self.sock)
        return chunk, arrival


class TlsTransport(TcpTransport):
    """SIP over TLS (RFC 3261 §26.2.1, RFC 5630): TCP with the connection wrapped once the
    handshake has checked the server's certificate; `handshake` says how long that took.
    An ssl.SSLError (a certificate that is expired, for another name, or from an unknown
    CA) is an OSError: the caller sees it as a connection that could not be opened."""

    name, via, reliable = "tls", "TLS", True

    def __init__(self, sock: ssl.SSLSocket, handshake: float = 0.0):
        super().__init__(sock)
        self.handshake = handshake

    @classmethod
    def open(cls, remote: tuple[str, int], local_ip: str, timeout: float,
             tls: TlsSettings | None = None) -> "TlsTransport":
        tls = tls or TlsSettings()
        raw = socket.create_connection(remote, timeout=timeout, source_address=(local_ip, 0))
        began = time.perf_counter()
        try:
            sock = tls.context().wrap_socket(raw, server_hostname=tls.server_name or remote[0])
        except BaseException:
            raw.close()
            raise
        return cls(sock, time.perf_counter() - began)

    def _chunk(self) -> tuple[bytes, float]:
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLWantReadError:  # a timeout of 0 with nothing decrypted yet
            raise BlockingIOError from None
        return chunk, time.time()


TRANSPORTS: dict[str, type[Transport]] = {t.name: t for t in (UdpTransport, TcpTransport,
                                                                   TlsTransport)}


def open_transport(name: str, remote: tuple[str, int], local_ip: str,
                   timeout: float, tls: TlsSettings | None = None) -> Transport:
    """A transport to `remote` from `local_ip`; OSError when it cannot be opened (a stream's
    connection refused or timed out within `timeout`, a TLS certificate refused)."""
    try:
        kind = TRANSPORTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown SIP transport {name!r} (known: {', '.join(TRANSPORTS)})") \
            from None
    if kind is UdpTransport:
        return kind.open(remote, local_ip, timeout)
    return kind.open(remote, local_ip, timeout, tls)
