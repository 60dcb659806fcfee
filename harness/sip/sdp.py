"""SDP, written and read in one place: the audio offers and answers the harness writes (the
caller, the sandbox PBX, the SIPp engine's scenario), and the two facts a call's media
needs from the far end's: where to send audio, and whether any flows.

An SBC or a carrier's border element anchors media by writing its own address
into the SDP it passes on (RFC 4566 `c=` and `m=audio`), so the RTP of the call
flows through it. Only those lines change; everything else is kept byte for byte.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.sip.message import checked_address

PCMU = (0, "PCMU/8000")
TELEPHONE_EVENT = (101, "telephone-event/8000")  # RFC 4733 DTMF events, offered by callers
EVENTS_FMTP = "fmtp:101 0-16"


@dataclass(frozen=True)
class Audio:
    """One audio stream's session description (RFC 4566; offer/answer RFC 3264).

    Fields are text so a template can pass its own placeholders (SIPp's `[media_port]`).
    `attributes` are further `a=` lines after the codecs' (room for `crypto:` of SDES-SRTP,
    RFC 4568, and `fmtp:101 0-16` of telephone-event, RFC 4733); `direction` None writes
    none (sendrecv is the default)."""

    ip: str
    port: int | str
    session_id: int | str = 1
    origin: str = "drill"
    origin_ip: str | None = None  # the o= line's address (default: ip)
    family: str = "4"             # IP4, for c=
    origin_family: str = "4"      # and for o=
    session_name: str = "drill"
    codecs: tuple[tuple[int | str, str], ...] = (PCMU,)
    ptime: int | None = 20
    direction: str | None = "sendrecv"
    attributes: tuple[str, ...] = ()
    profile: str = "RTP/AVP"

    def text(self, eol: str = "\r\n") -> str:
        """The description; `eol` "\n" for a template whose tool writes CRLF itself (SIPp)."""
        lines = [
            "v=0",
            f"o={self.origin} {self.session_id} {self.session_id} IN IP{self.origin_family} "
            f"{self.origin_ip or self.ip}",
            f"s={self.session_name}",
            f"c=IN IP{self.family} {self.ip}",
            "t=0 0",
            f"m=audio {self.port} {self.profile} {' '.join(str(pt) for pt, _ in self.codecs)}",
            *(f"a=rtpmap:{pt} {name}" for pt, name in self.codecs),
            *([f"a=ptime:{self.ptime}"] if self.ptime else []),
            *(f"a={a}" for a in self.attributes),
            *([f"a={self.direction}"] if self.direction else []),
        ]
        return eol.join(lines) + eol

    def encode(self) -> bytes:
        return self.text().encode()


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


def event_payload_type(body: bytes) -> int | None:
    """The payload type the description gives RFC 4733 telephone-events (8 kHz), or None."""
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("a=rtpmap:") and "telephone-event/8000" in line.lower():
            try:
                return int(line[len("a=rtpmap:"):].split()[0])
            except ValueError:
                return None
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


def audio_profile(body: bytes) -> str | None:
    """The transport profile of the audio stream (RTP/AVP, RTP/SAVP), or None."""
    for line in body.decode(errors="replace").splitlines():
        parts = line.split()
        if line.startswith("m=audio ") and len(parts) >= 3:
            return parts[2]
    return None


def with_crypto(body: bytes, attributes: list[str], profile: str) -> bytes:
    """`body` with its `a=crypto` lines replaced by `attributes` (texts after `a=`, none to
    strip them) and the audio profile set to `profile`: how a border element that ends SRTP
    (RFC 4568) passes an offer on in the clear and its answer back with its own key."""
    out = []
    for line in body.split(b"\n"):
        end = b"\r" if line.endswith(b"\r") else b""
        text = line[:-1] if end else line
        if text.startswith(b"a=crypto:"):
            continue
        if text.startswith(b"m=audio "):
            fields = text.split(b" ")
            if len(fields) >= 3:
                fields[2] = profile.encode()
                text = b" ".join(fields)
            out.append(text + end)
            out.extend(f"a={a}".encode() + (end or b"") for a in attributes)
            continue
        out.append(text + end)
    return b"\n".join(out)
