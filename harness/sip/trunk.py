"""One long-lived TLS connection per entry point, carrying many calls, as a carrier's trunk
keeps it (RFC 5630 §3.3; RFC 5923's connection reuse): the calls' dialogs share it, and a
lost connection is opened again by the next call, which says so in its record.

A `Trunk` belongs to one (address, local address, TLS settings) in this process. Its
connection has one reader (a thread, or a greenlet under Locust) that frames the stream,
parses each message and hands it to the call whose Call-ID it carries; each call sees a
`Channel`, a Transport of its own that sends on the shared connection and reads only its
messages. The SSL object is used by one party at a time (an I/O lock around each send and
each read: OpenSSL's objects are not safe for simultaneous use), the reader waiting on
select() outside the lock so a send never waits for a read.

When the connection ends (the far end closed it, reset it, or stopped answering a send),
every call on it sees its transport closed, as with a connection of its own.
"""
from __future__ import annotations

import queue
import select
import socket
import ssl
import threading
import time

from harness.sip.framing import split_stream
from harness.sip.message import SipMessage
from harness.sip.transport import TlsSettings, TlsTransport, Transport, TransportClosed, \
    stamped_message

SEND_TIMEOUT = 5.0  # a send the far end does not take within this ends the connection
POLL = 0.5          # the reader's longest wait before it looks whether it should stop
_CLOSED = None      # what a channel's queue gets when the connection ended


class Connection:
    """One open TLS connection and its reader."""

    def __init__(self, tls: TlsTransport):
        self.sock = tls.sock
        self.handshake = tls.handshake
        self.ip, self.port = tls.ip, tls.port
        self.io = threading.Lock()
        self.channels: dict[str, queue.Queue] = {}
        self.dead = False
        self.reader = threading.Thread(target=self._read_loop, name="tls-trunk", daemon=True)
        self.reader.start()

    def send(self, data: bytes) -> None:
        if self.dead:
            raise TransportClosed("the trunk's connection is closed")
        try:
            with self.io:
                self.sock.settimeout(SEND_TIMEOUT)
                self.sock.sendall(data)
        except OSError:
            self.close()
            raise

    def _read_loop(self) -> None:
        buf = b""
        try:
            while not self.dead:
                ready, _, _ = select.select([self.sock], [], [], POLL)
                if not ready and not self.sock.pending():
                    continue
                chunks = self._drain()
                arrival = time.time()  # decrypted now (the ssl module read the socket itself)
                messages, buf = split_stream(buf + b"".join(chunks))
                for data in messages:
                    msg = stamped_message(data, arrival)
                    if msg is not None:
                        box = self.channels.get(msg.call_id)
                        if box is not None:  # else a call that has ended: dropped
                            box.put(msg)
        except (OSError, ValueError):  # closed, reset, or the socket gone under us
            pass
        finally:
            self.close()

    def _drain(self) -> list[bytes]:
        """Every decrypted byte there is now; TransportClosed at the far end's close."""
        chunks = []
        with self.io:
            self.sock.settimeout(0)
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                if not chunk:
                    raise TransportClosed("peer closed the connection")
                chunks.append(chunk)
                if not self.sock.pending():
                    break
        return chunks

    def close(self) -> None:
        if self.dead:
            return
        self.dead = True
        for box in list(self.channels.values()):
            box.put(_CLOSED)
        try:
            self.sock.close()
        except OSError:
            pass


class Channel(Transport):
    """One call's view of the trunk: sends on the shared connection, reads its own messages."""

    name, via, reliable = "tls", "TLS", True

    def __init__(self, conn: Connection, call_id: str, opened: bool):
        # no socket of its own: the connection's addresses, the connection's handshake
        self.conn, self.call_id = conn, call_id
        self.ip, self.port = conn.ip, conn.port
        self.closed = conn.dead
        self.refused = False
        self.reused = not opened
        self.handshake = conn.handshake if opened else None
        self.box: queue.Queue = queue.Queue()
        conn.channels[call_id] = self.box

    def send(self, msg: SipMessage, dest=None) -> None:
        self.conn.send(msg.to_bytes())

    def receive(self, deadline: float) -> SipMessage | None:
        if self.closed:
            return None
        try:
            msg = self.box.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            return None
        if msg is _CLOSED:
            self.closed = True
        return msg

    def waiting(self) -> list[SipMessage]:
        out = []
        while not self.closed:
            try:
                msg = self.box.get_nowait()
            except queue.Empty:
                break
            if msg is _CLOSED:
                self.closed = True
                break
            out.append(msg)
        return out

    def close(self) -> None:
        """The call is over: its messages are no longer wanted; the connection stays."""
        self.conn.channels.pop(self.call_id, None)


class Trunk:
    """The shared connection to one entry point: opened on first use, again after a loss."""

    def __init__(self, remote: tuple[str, int], local_ip: str, tls: TlsSettings | None):
        self.remote, self.local_ip, self.tls = remote, local_ip, tls
        self.lock = threading.Lock()
        self.conn: Connection | None = None
        self.opened = 0  # connections opened so far (the first, then one per loss)

    def channel(self, call_id: str, timeout: float) -> Channel:
        """A call's transport on the trunk, opening the connection if there is none; OSError
        as open_transport gives it (refused, timed out, certificate refused), also when
        another call has been opening the connection for longer than `timeout`."""
        if not self.lock.acquire(timeout=timeout):
            raise socket.timeout(f"another call is still opening the connection to "
                                 f"{self.remote[0]}:{self.remote[1]}")
        try:
            opened = self.conn is None or self.conn.dead
            if opened:
                self.conn = Connection(TlsTransport.open(self.remote, self.local_ip, timeout,
                                                         self.tls))
                self.opened += 1
            return Channel(self.conn, call_id, opened)
        finally:
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()


_trunks: dict[tuple, Trunk] = {}
_trunks_lock = threading.Lock()


def trunk(remote: tuple[str, int], local_ip: str, tls: TlsSettings | None) -> Trunk:
    """This process's trunk to `remote` from `local_ip` with these TLS checks."""
    key = (remote, local_ip, tls)
    with _trunks_lock:
        t = _trunks.get(key)
        if t is None:
            t = _trunks[key] = Trunk(remote, local_ip, tls)
        return t


def close_trunks() -> None:
    """Close every trunk's connection (the end of a load: nothing left open behind it)."""
    with _trunks_lock:
        trunks = list(_trunks.values())
        _trunks.clear()
    for t in trunks:
        t.close()
