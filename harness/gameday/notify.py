"""Webhook notifications: one JSON POST per game-day moment (armed, started, aborted, finished).

Standard library only (urllib): one POST with a short timeout needs no HTTP
client dependency. A failed delivery is recorded and never stops or delays
a rollback.
"""
from __future__ import annotations

import json
import time
import urllib.error

from harness.ops.http import open_url
from harness.ops.secrets import redact_text


def post_json(url: str, payload: dict, timeout: float = 3.0) -> str | None:
    """POST `payload`; None on a 2xx answer, else what went wrong."""
    try:
        with open_url(url, timeout, data=json.dumps(payload, default=str).encode(), method="POST",
                      headers={"Content-Type": "application/json",
                               "User-Agent": "hotline-drill"}) as resp:
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return redact_text(str(getattr(exc, "reason", exc)))


class Notifier:
    """Sends game-day notifications to one webhook (or nowhere) and keeps a delivery log."""

    def __init__(self, url: str | None, gameday_id: str, sealed: str):
        self.url, self.gameday_id, self.sealed = url, gameday_id, sealed
        self.log: list[dict] = []

    def send(self, event: str, **data) -> dict:
        payload = {"event": event, "gameday_id": self.gameday_id, "sealed_sha256": self.sealed,
                   "ts": time.time(), **data}
        entry = {"event": event, "ts": payload["ts"], "url": self.url,
                 "error": post_json(self.url, payload) if self.url else "no webhook configured"}
        self.log.append(entry)
        return entry
