"""SRTP with SDES keys (RFC 3711, RFC 4568): the `a=crypto` lines of an offer or answer, and
one call's protect/unprotect contexts, through libsrtp2 (pylibsrtp); no cipher is written here.

An SDES offer carries one `a=crypto` line per suite it accepts, each with the key the offerer
sends with; the answer picks one line (same tag, same suite) and gives the answerer's own key.
Each side protects its packets with its own key and unprotects the far end's with the far
end's. A packet that fails authentication (a wrong key, a mangled packet) is counted, never
read as audio, so a key mismatch shows as what it is, not as silence or loss.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from pylibsrtp import Error, Policy, Session

SUITES = {  # the RFC 4568 names this harness offers and accepts, first preferred
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_SALT = 30  # bytes: a 128-bit master key and a 112-bit master salt


@dataclass(frozen=True)
class Crypto:
    """One `a=crypto` line: its tag, suite and inline master key + salt."""

    tag: int
    suite: str
    key: bytes

    def attribute(self) -> str:
        """The attribute's text after `a=` (for sdp.Audio's attributes)."""
        return f"crypto:{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"

    @classmethod
    def fresh(cls, tag: int, suite: str) -> "Crypto":
        return cls(tag, suite, os.urandom(KEY_SALT))


def offer(suites: tuple[str, ...] = tuple(SUITES)) -> list[Crypto]:
    """The crypto lines of an offer: one per suite, tags from 1, a fresh key each."""
    return [Crypto.fresh(i, s) for i, s in enumerate(suites, 1)]


def parse(body: bytes) -> list[Crypto]:
    """The `a=crypto` lines of an SDP body that this harness can use (a known suite, one inline
    key of the right length, a lifetime allowed; a line with an MKI is skipped: libsrtp's MKI
    is not wired here), in the order given."""
    out = []
    for line in body.decode(errors="replace").splitlines():
        if not line.startswith("a=crypto:"):
            continue
        fields = line[len("a=crypto:"):].split()
        if len(fields) < 3 or fields[1] not in SUITES or not fields[2].startswith("inline:"):
            continue
        inline, *params = fields[2][len("inline:"):].split("|")
        if any(":" in p for p in params):  # an MKI (value:length)
            continue
        try:
            tag, key = int(fields[0]), base64.b64decode(inline, validate=True)
        except ValueError:
            continue
        if len(key) == KEY_SALT:
            out.append(Crypto(tag, fields[1], key))
    return out


def answer(offered: list[Crypto]) -> tuple[Crypto, Crypto] | None:
    """(the offer's line taken, our answer's line) for the first offered suite we support."""
    for c in offered:
        if c.suite in SUITES:
            return c, Crypto.fresh(c.tag, c.suite)
    return None


def chosen(ours: list[Crypto], answered: list[Crypto]) -> tuple[Crypto, Crypto] | None:
    """(our line, the answer's) when the answer took one of our offered lines; else None."""
    by_tag = {c.tag: c for c in ours}
    for c in answered:
        mine = by_tag.get(c.tag)
        if mine is not None and mine.suite == c.suite:
            return mine, c
    return None


class SrtpContext:
    """One call's SRTP both ways: our packets protected with our key, the far end's
    unprotected with its key; failures counted by kind."""

    __slots__ = ("_tx", "_rx", "auth_failed", "replayed")

    def __init__(self, local: Crypto, remote: Crypto):
        self._tx = Session(Policy(key=local.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                  srtp_profile=SUITES[local.suite]))
        self._rx = Session(Policy(key=remote.key, ssrc_type=Policy.SSRC_ANY_INBOUND,
                                  srtp_profile=SUITES[remote.suite]))
        self.auth_failed = 0  # packets whose authentication tag did not match (wrong key)
        self.replayed = 0     # packets seen before (a duplicate on the path): dropped, not lost

    def protect(self, packet: bytes) -> bytes | None:
        """The SRTP packet, or None for a packet sent before (libsrtp refuses to protect a
        sequence number twice: a duplicate on the path, dropped as it would be on a wire)."""
        try:
            return self._tx.protect(packet)
        except Error:
            return None

    def unprotect(self, packet: bytes) -> bytes | None:
        """The plain RTP packet, or None (counted) when it cannot be read."""
        try:
            return self._rx.unprotect(packet)
        except Error as exc:
            if "replay" in str(exc):
                self.replayed += 1
            else:
                self.auth_failed += 1
            return None
