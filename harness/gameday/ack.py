"""The acknowledgement endpoint: on-call says "we see it", the harness notes when.

`drill gameday` listens on a local address; `drill ack` (or any HTTP client:
`curl -X POST http://HOST:PORT/ack -d '{"by": "alice"}'`) posts to it. The
first acknowledgement after the first fault gives the time to detect.
Standard library http.server: one tiny endpoint needs no web framework.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class AckServer:
    """Receives acknowledgements; hands each to `on_ack(ack)` and keeps them all."""

    def __init__(self, listen: str, gameday_id: str):
        host, _, port = listen.rpartition(":")
        self.gameday_id = gameday_id
        self.acks: list[dict] = []
        self.on_ack: Callable[[dict], None] | None = None
        self.got_one = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") != "/ack":
                    return self._reply(404, {"error": "POST to /ack"})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._reply(400, {"error": "send a JSON object, e.g. {\"by\": \"alice\"}"})
                ack = {"ts": time.time(), "by": str(body.get("by") or "unknown")[:80],
                       "note": str(body.get("note") or "")[:500]}
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


def send_ack(url: str, by: str, note: str = "", timeout: float = 5.0) -> dict:
    """What `drill ack` does: POST one acknowledgement; returns the endpoint's answer."""
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps({"by": by, "note": note}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())
