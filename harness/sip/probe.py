"""SIP OPTIONS probe: is there a SIP server answering at this address?"""
from __future__ import annotations

import socket
import time

from harness.sip.message import (SipMessage, SipParseError, local_ip_for, new_branch, parse,
                                 token)


def options_ping(addr: tuple[str, int], timeout: float = 0.5, local_ip: str | None = None) -> int:
    """Send one OPTIONS; return the response status, or 0 when none came in time."""
    local_ip = local_ip or local_ip_for(addr[0])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((local_ip, 0))
        port = sock.getsockname()[1]
        msg = SipMessage(method="OPTIONS", uri=f"sip:{addr[0]}:{addr[1]}")
        msg.headers = [("Via", f"SIP/2.0/UDP {local_ip}:{port};branch={new_branch()};rport"),
                       ("Max-Forwards", "70"), ("From", f"<sip:probe@{local_ip}>;tag={token(6)}"),
                       ("To", f"<sip:{addr[0]}:{addr[1]}>"), ("Call-ID", token(12)),
                       ("CSeq", "1 OPTIONS")]
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


def wait_until_answers(addr: tuple[str, int], within: float, every: float = 0.2) -> bool:
    """Poll with OPTIONS until the address answers 200, for at most `within` seconds."""
    deadline = time.time() + within
    while time.time() < deadline:
        if options_ping(addr, timeout=min(every * 2, 0.5)) == 200:
            return True
        time.sleep(every)
    return False
