"""SIP OPTIONS probe: is there a SIP server answering at this address?"""
from __future__ import annotations

import socket
import time

from harness.sip.message import (SipMessage, SipParseError, local_ip_for, new_branch, parse,
                                 token)


def _options(addr: tuple[str, int], local_ip: str, port: int, transport: str) -> SipMessage:
    suffix = ";transport=tcp" if transport == "TCP" else ""
    msg = SipMessage(method="OPTIONS", uri=f"sip:{addr[0]}:{addr[1]}{suffix}")
    msg.headers = [("Via", f"SIP/2.0/{transport} {local_ip}:{port};branch={new_branch()};rport"),
                   ("Max-Forwards", "70"), ("From", f"<sip:probe@{local_ip}>;tag={token(6)}"),
                   ("To", f"<sip:{addr[0]}:{addr[1]}>"), ("Call-ID", token(12)),
                   ("CSeq", "1 OPTIONS")]
    return msg


def options_ping(addr: tuple[str, int], timeout: float = 0.5, local_ip: str | None = None,
                 transport: str = "udp") -> int:
    """Send one OPTIONS; return the response status, or 0 when none came in time."""
    local_ip = local_ip or local_ip_for(addr[0])
    if transport == "tcp":
        return _options_tcp(addr, timeout, local_ip)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((local_ip, 0))
        msg = _options(addr, local_ip, sock.getsockname()[1], "UDP")
        sock.sendto(msg.to_bytes(), addr)
        deadline = time.time() + timeout
        while (left := deadline - time.time()) > 0:
            sock.settimeout(left)
            try:
                resp = parse(sock.recvfrom(65535)[0])
            except (socket.timeout, ConnectionRefusedError):
                return 0
            except SipParseError:
                continue
            if not resp.is_request and resp.status >= 200:
                return resp.status
        return 0
    finally:
        sock.close()


def _options_tcp(addr: tuple[str, int], timeout: float, local_ip: str) -> int:
    from harness.sip.framing import split_stream
    try:
        sock = socket.create_connection(addr, timeout=timeout, source_address=(local_ip, 0))
    except OSError:
        return 0
    try:
        sock.sendall(_options(addr, local_ip, sock.getsockname()[1], "TCP").to_bytes())
        buf, deadline = b"", time.time() + timeout
        while (left := deadline - time.time()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65535)
            if not chunk:
                return 0
            messages, buf = split_stream(buf + chunk)
            for raw in messages:
                resp = parse(raw)
                if not resp.is_request and resp.status >= 200:
                    return resp.status
        return 0
    except (OSError, SipParseError):
        return 0
    finally:
        sock.close()


def wait_until_answers(addr: tuple[str, int], within: float, every: float = 0.2,
                       stop=lambda: False) -> bool:
    """Poll with OPTIONS until the address answers 200, for at most `within` seconds (or until
    `stop()` is true)."""
    deadline = time.time() + within
    while time.time() < deadline and not stop():
        if options_ping(addr, timeout=min(every * 2, 0.5)) == 200:
            return True
        time.sleep(every)
    return False
