"""SIP OPTIONS probe: is there a SIP server answering at this address?

The probe is a one-request dialog, so a server that challenges OPTIONS (401/407) is
answered with the node's or entry point's digest credentials like a call is.
"""
from __future__ import annotations

import time

from harness.sip.dialog import Dialog
from harness.sip.digest import Credential, DigestCredentials
from harness.sip.message import local_ip_for, token
from harness.sip.transport import TlsSettings, open_transport


def options_ping(addr: tuple[str, int], timeout: float = 0.5, local_ip: str | None = None,
                 transport: str = "udp", credentials: tuple[Credential, ...] = (),
                 tls: TlsSettings | None = None) -> int:
    """Send one OPTIONS (retransmitted over UDP within `timeout`, sent again with credentials
    when challenged); return the final response's status, or 0 when none came in time or the
    address cannot be reached."""
    local_ip = local_ip or local_ip_for(addr[0])
    try:
        t = open_transport(transport, addr, local_ip, timeout, tls)
    except OSError:
        return 0
    dialog = Dialog(t, addr, callee=None, call_id=token(12),
                    challenges=DigestCredentials(list(credentials)))
    try:
        _, final = dialog.transact(dialog.request("OPTIONS", uri=f"sip:{addr[0]}:{addr[1]}"
                                                  f"{t.uri_param}"), timeout, refused_ends=True)
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
