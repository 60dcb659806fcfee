"""When a datagram or a TCP segment really arrived: the kernel's receive stamp.

A response is read when the caller's greenlet next runs. If the generator's
event loop stalls (a busy core, a page fault), `time.time()` after the read
would move answers, ringing and RTP arrivals later by the stall, and the
outage, PDD and jitter figures with them. The kernel stamps each packet as it
comes in (SO_TIMESTAMPNS, wall clock like `time.time()`), so the harness's own
pauses no longer enter the figures; `load/health.py` still watches the loop for
what a stall does change (calls placed late).
"""
from __future__ import annotations

import socket
import struct
import time

# Linux: SO_TIMESTAMPNS (the "old" 64-bit-long timespec form) and its control message
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
TIMESPEC = struct.Struct("@ll")
ANCILLARY = socket.CMSG_SPACE(TIMESPEC.size)


_keeper: socket.socket | None = None


def stamp_arrivals(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what `sock` receives; False where it cannot.

    The kernel stamps packets as they arrive only while some socket asks for stamps
    (it switches that on by deferred work); a packet that came while it was off is
    stamped when it is read, which is the very delay this module is here to remove.
    One socket kept for the life of the process holds it on between calls."""
    global _keeper
    try:
        if _keeper is None:
            _keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            _keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    except OSError:
        return False


def stamp_of(ancdata) -> float | None:
    """The receive stamp in a recvmsg() control-message list, seconds since the epoch."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return None


def receive(sock: socket.socket, size: int = 65535) -> tuple[bytes, tuple, float]:
    """(data, sender, arrival): one recvmsg; arrival is the kernel's stamp, or now without one."""
    data, ancdata, _flags, sender = sock.recvmsg(size, ANCILLARY)
    return data, sender, stamp_of(ancdata) or time.time()
