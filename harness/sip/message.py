"""SIP messages: parse and build the RFC 3261 text format.

Hand-written rather than taken from a library: the load generator and the
sandbox need only request/response framing and a handful of headers, and the
measured alternatives (see bench/README.md) were slower or could not run
without a registrar. Headers keep their order and repeat (Via, Route).
"""
from __future__ import annotations

import ipaddress
import random
import string
from dataclasses import dataclass, field

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type"}
CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID",
             "cseq": "CSeq", "contact": "Contact", "content-length": "Content-Length",
             "content-type": "Content-Type", "max-forwards": "Max-Forwards",
             "record-route": "Record-Route", "route": "Route", "user-agent": "User-Agent"}
REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           407: "Proxy Authentication Required", 408: "Request Timeout",
           481: "Call/Transaction Does Not Exist", 483: "Too Many Hops",
           500: "Server Internal Error", 503: "Service Unavailable"}
MAGIC_COOKIE = "z9hG4bK"


class SipParseError(ValueError):
    """The bytes are not a SIP message we can read."""


@dataclass
class SipMessage:
    """One SIP request (method set) or response (status set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    received_at: float | None = None  # the kernel's receive stamp (sip/arrival.py), when read

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        out: list[str] = []
        for k, v in self.headers:
            if k.lower() == key:
                out.extend(part.strip() for part in split_header_values(v))
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every header of this name with one value (kept in place)."""
        key = name.lower()
        for i, (k, _) in enumerate(self.headers):
            if k.lower() == key:
                self.headers[i] = (k, value)
                self.headers = [h for j, h in enumerate(self.headers)
                                if j <= i or h[0].lower() != key]
                return
        self.headers.append((CANONICAL.get(key, name), value))

    def remove(self, name: str) -> None:
        key = name.lower()
        self.headers = [h for h in self.headers if h[0].lower() != key]

    def prepend(self, name: str, value: str) -> None:
        self.headers.insert(0, (CANONICAL.get(name.lower(), name), value))

    @property
    def call_id(self) -> str:
        return self.get("call-id", "") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("cseq", "0 NONE") or "0 NONE").split()
        return int(raw[0]), raw[1].upper() if len(raw) > 1 else ""

    @property
    def top_via(self) -> str:
        vias = self.get_all("via")
        return vias[0] if vias else ""

    @property
    def branch(self) -> str:
        return header_param(self.top_via, "branch") or ""

    def to_bytes(self) -> bytes:
        if self.is_request:
            first = f"{self.method} {self.uri} SIP/2.0"
        else:
            first = f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status, 'Unknown')}"
        lines = [first]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def split_header_values(value: str) -> list[str]:
    """Split a comma-joined header value, respecting <...> and quotes."""
    parts, depth, quoted, cur = [], 0, False, []
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse(data: bytes) -> SipMessage:
    """Parse one whole SIP message (a UDP datagram or a framed TCP message)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"not UTF-8: {exc}") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    first = lines[0].strip()
    msg = SipMessage()
    if first.startswith("SIP/2.0 "):
        bits = first.split(" ", 2)
        try:
            msg.status = int(bits[1])
        except (IndexError, ValueError) as exc:
            raise SipParseError(f"bad status line: {first!r}") from exc
        msg.reason = bits[2] if len(bits) > 2 else ""
    else:
        bits = first.split(" ")
        if len(bits) != 3 or bits[2] != "SIP/2.0":
            raise SipParseError(f"bad request line: {first!r}")
        msg.method, msg.uri = bits[0].upper(), bits[1]
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation line
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"bad header line: {line!r}")
        key = name.strip()
        key = CANONICAL.get(COMPACT.get(key.lower(), key.lower()), key)
        msg.headers.append((key, value.strip()))
    length = msg.get("content-length")
    msg.body = body[: int(length)] if length and length.isdigit() else body
    return msg


def header_param(value: str, name: str) -> str | None:
    """Value of `;name=value` in a header (outside any <uri>)."""
    tail = value.rsplit(">", 1)[-1]
    for part in tail.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == name:
            return v.strip()
    return None


def uri_of(value: str) -> str:
    """The URI inside a name-addr (`"x" <sip:a@b>;tag=1`) or an addr-spec."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """Host and port of a SIP URI, e.g. sip:pbx@127.0.0.1:5071;lr -> (127.0.0.1, 5071)."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    hostport = rest.rsplit("@", 1)[-1]
    host, _, port = hostport.partition(":")
    return host, int(port) if port.isdigit() else default_port


def via_address(via: str) -> tuple[str, int]:
    """Where a response to this Via goes (RFC 3581 received/rport first); ValueError when
    it names no usable IPv4 address and port."""
    sent_by = via.split(None, 1)[1].split(";", 1)[0] if " " in via else via
    host, _, port = sent_by.strip().partition(":")
    received = header_param(via, "received")
    rport = header_param(via, "rport")
    return checked_address(received or host, rport if rport else (port or 5060))


def checked_address(host: str, port) -> tuple[str, int]:
    """(IPv4 address, port 1-65535), or ValueError: one bad header must never reach sendto,
    where an out-of-range port would close an asyncio transport for good."""
    ipaddress.IPv4Address(host)  # ValueError for a name, IPv6 or junk
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return host, port


def free_port(host: str = "127.0.0.1", udp: bool = True) -> int:
    """A port the kernel says is free on `host` now (UDP or TCP), for a listener we start."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listener_port(host: str = "127.0.0.1", udp: bool = True) -> int:
    """A free port for a listener another process binds later: picked below the kernel's
    ephemeral range, so no socket bound to port 0 meanwhile (a call's media socket, say) can
    take it between our check and that process's bind."""
    import random
    import socket
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(10000, max(10001, low))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host, udp)


def local_ip_for(host: str) -> str:
    """Our address on the route to `host`: 127.0.0.1 for loopback, else what the kernel picks."""
    if host.startswith("127."):
        return "127.0.0.1"
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, 9))  # no packet is sent: this only asks the routing table
        return s.getsockname()[0]
    finally:
        s.close()


def token(n: int = 10) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


def new_branch() -> str:
    return MAGIC_COOKIE + token(16)


def response_to(req: SipMessage, status: int, reason: str = "",
                to_tag: str | None = None) -> SipMessage:
    """A response that copies the headers RFC 3261 §8.2.6 says to copy."""
    resp = SipMessage(status=status, reason=reason or REASONS.get(status, ""))
    for k, v in req.headers:
        if k.lower() in ("via", "from", "call-id", "cseq", "record-route"):
            resp.headers.append((k, v))
        elif k.lower() == "to":
            if to_tag and "tag=" not in v:
                v = f"{v};tag={to_tag}"
            resp.headers.append((k, v))
    return resp
