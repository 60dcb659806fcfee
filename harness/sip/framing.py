"""Stream framing of SIP messages (TCP): headers up to a blank line, then Content-Length bytes."""
from __future__ import annotations

import re

MAX_MESSAGE = 256 * 1024
_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE | re.MULTILINE)


def split_stream(buf: bytes) -> tuple[list[bytes], bytes]:
    """Whole messages at the front of `buf`, and the incomplete rest."""
    out = []
    while True:
        buf = buf.lstrip(b"\r\n")  # keepalive CRLFs between messages
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        head = buf[:end]
        m = _LENGTH.search(head)
        length = int(m.group(1)) if m else 0
        total = end + 4 + length
        if len(buf) < total:
            return out, buf
        out.append(buf[:total])
        buf = buf[total:]
