"""Digest authentication for SIP (RFC 3261 §22, RFC 7616 algorithms, RFC 8760 for SIP).

The dialog hands every 401/407 to `DigestCredentials.answer` (dialog.py): the challenge is
parsed, the credentials for its realm are picked, and the request goes again with the next
CSeq and an Authorization (401) or Proxy-Authorization (407) header. MD5, SHA-256 and
SHA-512-256, with qop=auth (a fresh cnonce, the nonce count kept per nonce) or without qop
(RFC 2069 style, which older SBCs still send). A challenge with `stale=true` is answered
again with the same password; the same realm challenging twice otherwise means the
credentials were refused, and the challenge becomes the call's final response.

hashlib has MD5, SHA-256 and SHA-512/256 (OpenSSL's sha512_256): no library needed.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from harness.sip.message import SipMessage

ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class DigestError(ValueError):
    """A challenge the harness cannot answer (an unknown algorithm, no qop it speaks)."""


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # a 407's Proxy-Authenticate (else a 401's WWW-Authenticate)


def parse_challenge(value: str, proxy: bool = False) -> Challenge:
    """One `Digest ...` challenge header value."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"not a Digest challenge: {scheme}")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    if "nonce" not in params or "realm" not in params:
        raise DigestError("a Digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(realm=params["realm"], nonce=params["nonce"],
                     algorithm=params.get("algorithm", "MD5").upper(), qop=qop,
                     opaque=params.get("opaque"), stale=params.get("stale", "").lower() == "true",
                     proxy=proxy)


def _h(algorithm: str, text: str) -> str:
    name = ALGORITHMS.get(algorithm.upper().removesuffix("-SESS"))
    if name is None:
        raise DigestError(f"digest algorithm {algorithm} is not supported "
                          f"(known: {', '.join(ALGORITHMS)})")
    return hashlib.new(name, text.encode()).hexdigest()


def response(ch: Challenge, username: str, password: str, method: str, uri: str,
             cnonce: str = "", nc: int = 1, qop: str | None = None) -> str:
    """The request-digest of RFC 7616 §3.4.1 (and RFC 2069 when `qop` is None)."""
    alg = ch.algorithm
    ha1 = _h(alg, f"{username}:{ch.realm}:{password}")
    if alg.upper().endswith("-SESS"):
        ha1 = _h(alg, f"{ha1}:{ch.nonce}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    if qop is None:
        return _h(alg, f"{ha1}:{ch.nonce}:{ha2}")
    return _h(alg, f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def authorization(ch: Challenge, username: str, password: str, method: str, uri: str,
                  nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization (or Proxy-Authorization) header value answering `ch`."""
    qop = "auth" if "auth" in ch.qop else None
    if ch.qop and qop is None:
        raise DigestError(f"the challenge offers qop={','.join(ch.qop)}; only auth is spoken")
    cnonce = cnonce if cnonce is not None else os.urandom(12).hex()
    digest = response(ch, username, password, method, uri, cnonce, nc, qop)
    parts = [f'username="{username}"', f'realm="{ch.realm}"', f'nonce="{ch.nonce}"',
             f'uri="{uri}"', f"response=\"{digest}\"", f"algorithm={ch.algorithm}"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    if ch.opaque is not None:
        parts.append(f'opaque="{ch.opaque}"')
    return "Digest " + ", ".join(parts)


def _raw(msg: SipMessage, name: str) -> list[str]:
    return [v for k, v in msg.headers if k.lower() == name]


@dataclass
class Credential:
    username: str
    password: str
    realm: str | None = None  # None: any realm


@dataclass
class DigestCredentials:
    """The dialog's challenge hook with credentials: one per realm, or one for any realm."""

    credentials: list[Credential]
    counts: dict[str, int] = field(default_factory=dict)  # nonce -> requests sent with it
    refused: set[str] = field(default_factory=set)        # realms that challenged twice
    missing: set[str] = field(default_factory=set)        # realms we hold no credentials for

    def for_realm(self, realm: str) -> Credential | None:
        exact = [c for c in self.credentials if c.realm == realm]
        return (exact or [c for c in self.credentials if c.realm is None] or [None])[0]

    def answer(self, request: SipMessage, challenge: SipMessage, dialog) -> SipMessage | None:
        proxy = challenge.status == 407
        header = "proxy-authenticate" if proxy else "www-authenticate"
        values = _raw(challenge, header)  # not get_all: a challenge's commas are its own
        if not values:
            return None
        try:
            ch = parse_challenge(values[0], proxy)
        except DigestError:
            return None
        cred = self.for_realm(ch.realm)
        if cred is None:
            self.missing.add(ch.realm)
            return None
        sent_before = any(f'realm="{ch.realm}"' in v for v in
                          _raw(request, "proxy-authorization" if proxy else "authorization"))
        if sent_before and not ch.stale:
            self.refused.add(ch.realm)  # refused credentials: the challenge is the answer
            return None
        nc = self.counts.get(ch.nonce, 0) + 1
        self.counts[ch.nonce] = nc
        try:
            value = authorization(ch, cred.username, cred.password, request.method,
                                  request.uri, nc)
        except DigestError:
            return None
        again = dialog.request(request.method, request.body, uri=request.uri)
        again.headers.append(("Proxy-Authorization" if proxy else "Authorization", value))
        return again

    def why(self) -> str:
        """What a final 401/407 means for this call, naming the realm(s): for a reason text."""
        parts = []
        if self.refused:
            parts.append(f"credentials refused by realm {', '.join(sorted(self.refused))}")
        if self.missing:
            parts.append(f"no credentials for realm {', '.join(sorted(self.missing))} "
                         "(hint: give the entry point `auth:` with username and password)")
        return "; ".join(parts) or "challenge not answered"


# -- the server's side: the sandbox SBC challenges with these -------------------------------

def challenge_header(realm: str, nonce: str, algorithm: str = "MD5", qop: bool = True,
                     stale: bool = False) -> str:
    """A `Digest ...` challenge value (WWW-Authenticate or Proxy-Authenticate)."""
    out = f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}'
    if qop:
        out += ', qop="auth"'
    return out + (", stale=true" if stale else "")


def parse_credentials(value: str) -> dict[str, str]:
    """The parameters of an Authorization / Proxy-Authorization `Digest ...` value ({} when
    it is not Digest)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(rest)}


def check_credentials(params: dict[str, str], realm: str, users: dict[str, str],
                      method: str, algorithm: str = "MD5") -> str:
    """What a server makes of a request's credentials: "ok", "unknown" (no credentials for
    this realm, or a user it does not know), or "wrong" (a response that does not match)."""
    if params.get("realm") != realm or params.get("username") not in users:
        return "unknown"
    ch = Challenge(realm=realm, nonce=params.get("nonce", ""),
                   algorithm=params.get("algorithm", algorithm).upper(),
                   qop=(params["qop"],) if params.get("qop") else ())
    try:
        nc = int(params.get("nc", "1"), 16)
        want = response(ch, params["username"], users[params["username"]], method,
                        params.get("uri", ""), params.get("cnonce", ""), nc, params.get("qop"))
    except (DigestError, ValueError):
        return "wrong"
    return "ok" if want == params.get("response") else "wrong"
