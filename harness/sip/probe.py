"""SIP OPTIONS probe: is there a SIP server answering at this address?"""
from __future__ import annotations

import time

from harness.sip.message import SipMessage, local_ip_for, new_branch, token
from harness.sip.transaction import ClientTransaction
from harness.sip.transport import Transport, open_transport


def _options(addr: tuple[str, int], t: Transport) -> SipMessage:
    msg = SipMessage(method="OPTIONS", uri=f"sip:{addr[0]}:{addr[1]}{t.uri_param}")
    msg.headers = [("Via", t.via_value(new_branch())),
                   ("Max-Forwards", "70"), ("From", f"<sip:probe@{t.ip}>;tag={token(6)}"),
                   ("To", f"<sip:{addr[0]}:{addr[1]}>"), ("Call-ID", token(12)),
                   ("CSeq", "1 OPTIONS")]
    return msg


def options_ping(addr: tuple[str, int], timeout: float = 0.5, local_ip: str | None = None,
                 transport: str = "udp") -> int:
    """Send one OPTIONS (retransmitted over UDP within `timeout`); return the final
    response's status, or 0 when none came in time or the address cannot be reached."""
    local_ip = local_ip or local_ip_for(addr[0])
    try:
        t = open_transport(transport, addr, local_ip, timeout)
    except OSError:
        return 0
    try:
        final = ClientTransaction(t, _options(addr, t), addr).run(timeout, refused_ends=True)
        return final.status if final is not None else 0
    except OSError:
        return 0
    finally:
        t.close()


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
