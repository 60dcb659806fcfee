"""The two SDP facts a call's media needs: where to send audio, and how to move it.

An SBC or a carrier's border element anchors media by writing its own address
into the SDP it passes on (RFC 4566 `c=` and `m=audio`), so the RTP of the call
flows through it. Only those lines change; everything else is kept byte for byte.
"""
from __future__ import annotations

from harness.sip.message import checked_address


def media_address(body: bytes) -> tuple[str, int] | None:
    """The connection address and audio port of an SDP body; None when it has no usable one."""
    ip, port = None, None
    for line in body.decode(errors="replace").splitlines():
        parts = line.split()
        if line.startswith("c=IN IP4 ") and len(parts) >= 3:
            ip = parts[2]
        elif line.startswith("m=audio ") and len(parts) >= 2:
            port = parts[1]
    try:
        return checked_address(ip, port) if ip and port else None
    except ValueError:
        return None


def inactive(body: bytes) -> bool:
    """The offer or answer says no media flows (RFC 4566 a=inactive)."""
    return any(line.strip() == b"a=inactive" for line in body.split(b"\n"))


def rewrite_media(body: bytes, ip: str, port: int) -> bytes:
    """`body` with every `c=IN IP4` address set to `ip` and the audio port to `port`."""
    out = []
    for line in body.split(b"\n"):
        end = b"\r" if line.endswith(b"\r") else b""
        text = line[:-1] if end else line
        if text.startswith(b"c=IN IP4 "):
            text = b"c=IN IP4 " + ip.encode()
        elif text.startswith(b"m=audio "):
            fields = text.split(b" ")
            if len(fields) >= 2:
                fields[1] = str(port).encode()
                text = b" ".join(fields)
        out.append(text + end)
    return b"\n".join(out)
