"""The sandbox SBC's registrar (RFC 3261 §10.3): a location table of agents' phones, kept in
memory as most registrars keep it by default (so a killed registrar forgets every phone, and
each comes back at its own next REGISTER), and written to a file on every change: the
ground truth a drill's count of registered agents is held to."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from harness.sip.message import SipMessage, response_to, token, uri_of

MIN_EXPIRES, MAX_EXPIRES = 10, 3600
# numbers that are agents' own: routed to the phone registered for them, 404 with none (the
# container lab's Kamailio routes the same numbers with lookup("location"))
AGENT_PREFIX = "agent"


class Location:
    """`limit`: REGISTERs a second it takes (a burst of one second's worth); past it, 503 with
    `Retry-After: retry_after` (s), as a registrar shedding a registration storm does."""

    def __init__(self, path: str | None = None, limit: float | None = None,
                 retry_after: int = 10):
        self.path = Path(path) if path else None
        self.table: dict[str, tuple[str, float]] = {}  # address of record -> (contact, expiry)
        self.counts = {"registered": 0, "refreshed": 0, "unregistered": 0, "too_brief": 0,
                       "overloaded": 0}
        self.limit, self.retry_after = limit, retry_after
        self.tokens, self.filled_at = limit or 0.0, time.monotonic()
        self._write()

    def _overloaded(self) -> bool:
        if self.limit is None:
            return False
        now = time.monotonic()
        self.tokens = min(self.limit, self.tokens + (now - self.filled_at) * self.limit)
        self.filled_at = now
        if self.tokens < 1:
            return True
        self.tokens -= 1
        return False

    def register(self, msg: SipMessage, now: float | None = None) -> SipMessage:
        """The response to one REGISTER (its credentials already checked)."""
        now = time.time() if now is None else now
        if self._overloaded():
            self.counts["overloaded"] += 1
            resp = response_to(msg, 503, "Service Unavailable", to_tag=token(8))
            resp.headers.append(("Retry-After", str(self.retry_after)))
            return resp
        self.expire(now)
        aor = uri_of(msg.get("to", "") or "")
        contact_value = msg.get("contact", "") or ""
        contact = uri_of(contact_value)
        m = re.search(r";\s*expires=(\d+)", contact_value)
        asked = int(m.group(1)) if m else int(msg.get("expires", "") or 3600)
        if not aor or (not contact and contact_value.strip() != "*"):
            return response_to(msg, 400, "Bad Request", to_tag=token(8))
        if asked == 0:
            if self.table.pop(aor, None) is not None:
                self.counts["unregistered"] += 1
            self._write()
            return response_to(msg, 200, to_tag=token(8))
        if asked < MIN_EXPIRES:
            self.counts["too_brief"] += 1
            resp = response_to(msg, 423, "Interval Too Brief", to_tag=token(8))
            resp.headers.append(("Min-Expires", str(MIN_EXPIRES)))
            return resp
        granted = min(asked, MAX_EXPIRES)
        self.counts["refreshed" if aor in self.table else "registered"] += 1
        self.table[aor] = (contact, now + granted)
        self._write()
        resp = response_to(msg, 200, to_tag=token(8))
        resp.headers.append(("Contact", f"<{contact}>;expires={granted}"))
        return resp

    def contact_of(self, user: str, now: float | None = None) -> str | None:
        """Where the phone registered for this number is (its Contact), if one is."""
        self.expire(time.time() if now is None else now)
        for aor, (contact, _) in self.table.items():
            if uri_user(aor) == user:
                return contact
        return None

    def expire(self, now: float) -> None:
        gone = [a for a, (_, until) in self.table.items() if until <= now]
        for a in gone:
            del self.table[a]
        if gone:
            self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({a: {"contact": c, "expires_at": t}
                                   for a, (c, t) in self.table.items()}))
        os.replace(tmp, self.path)  # a reader never sees half a table


def uri_user(uri: str) -> str:
    """The user part of a SIP URI (`sip:agent0001@sandbox` -> agent0001)."""
    return uri.partition(":")[2].partition("@")[0] if "@" in uri else ""


def read_location(path: str | Path, now: float | None = None) -> dict[str, dict]:
    """The registrar's table as written, less what has expired by `now`."""
    now = time.time() if now is None else now
    try:
        table = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    return {a: e for a, e in table.items() if e["expires_at"] > now}
