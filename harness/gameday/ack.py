"""The acknowledgement endpoint: on-call says "we see it", the harness notes when.

`drill gameday` listens on a local address; `drill ack` (or any HTTP client:
`curl -X POST http://HOST:PORT/ack -H "Authorization: Bearer TOKEN" -d '{"by": "alice"}'`)
posts to it. The first acknowledgement after the first fault gives the time to
detect, so the endpoint takes only acks that carry the game day's token (made
when it is armed, told to on-call with the armed notice, kept 0600 in the
state folder), one a second at most, bodies of 4 KiB at most. Names and notes
are cleaned of anything that would become markup in review.md.
Standard library http.server: one tiny endpoint needs no web framework.
"""
from __future__ import annotations

import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


MAX_BODY = 4096
MAX_ACKS = 100
MIN_GAP = 1.0  # seconds between two accepted acknowledgements


def clean(text: object, limit: int) -> str:
    """A name or note as plain text: no control characters, nothing Markdown or HTML reads
    as markup (table pipes, tags, code ticks, links)."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text))
    text = text.translate(str.maketrans({"|": "/", "<": "(", ">": ")", "`": "'", "[": "(",
                                         "]": ")", "*": "·", "_": "-", "#": "no."}))
    return text.strip()[:limit]


class AckServer:
    """Receives acknowledgements; hands each to `on_ack(ack)` and keeps them all."""

    def __init__(self, listen: str, gameday_id: str, token: str):
        host, _, port = listen.rpartition(":")
        self.gameday_id, self.token = gameday_id, token
        self.acks: list[dict] = []
        self.on_ack: Callable[[dict], None] | None = None
        self.got_one = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") != "/ack":
                    return self._reply(404, {"error": "POST to /ack"})
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if not hmac.compare_digest(given.encode(), server.token.encode()):
                    return self._reply(401, {"error": "the game day's token is needed "
                                                      "(Authorization: Bearer TOKEN)"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    return self._reply(413, {"error": f"at most {MAX_BODY} bytes"})
                now = time.time()
                if len(server.acks) >= MAX_ACKS or \
                        (server.acks and now - server.acks[-1]["ts"] < MIN_GAP):
                    return self._reply(429, {"error": "too many acknowledgements"})
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError
                except ValueError:
                    return self._reply(400, {"error": "send a JSON object, e.g. {\"by\": \"alice\"}"})
                ack = {"ts": now, "by": clean(body.get("by") or "unknown", 80) or "unknown",
                       "note": clean(body.get("note") or "", 500)}
                server.receive(ack)
                self._reply(200, {"acknowledged": True, "gameday_id": server.gameday_id,
                                  "ts": ack["ts"]})

            def _reply(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet: acks are recorded as events instead
                pass

        self.httpd = ThreadingHTTPServer((host, int(port)), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/ack"

    def receive(self, ack: dict) -> None:
        self.acks.append(ack)
        if self.on_ack:
            self.on_ack(ack)
        self.got_one.set()

    def start(self) -> "AckServer":
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_ack(url: str, by: str, note: str = "", token: str = "", timeout: float = 5.0) -> dict:
    """What `drill ack` does: POST one acknowledgement; returns the endpoint's answer."""
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps({"by": by, "note": note}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {token}"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())
