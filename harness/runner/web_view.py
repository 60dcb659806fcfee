"""The live view as a web page, for the people in the room while a drill runs: elapsed time,
calls ended per second, the answer rate in its alarm colour, calls in progress, callers
waiting (a journey), and the fault timeline. Read-only; bound to loopback unless another
address is asked for; every request needs the run's token (`?token=`, or a Bearer header).

It keeps the terminal view's counts (a LiveView that draws nothing) and serves them as
/state.json; the page polls that once a second. Standard library only: one page, one JSON.
"""
from __future__ import annotations

import hmac
import io
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rich.console import Console

from harness.metrics.alarms import alarm_level
from harness.runner.live import LiveView

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>hotline-drill live</title>
<style>body{font-family:sans-serif;margin:2rem}td,th{padding:.3rem .8rem;text-align:left}
.green{color:#2e7d32}.yellow{color:#f9a825}.orange{color:#ef6c00}.red{color:#c62828}
#rate{font-size:2.5rem;font-weight:bold}</style></head><body>
<h1>hotline-drill: <span id="scenario"></span></h1>
<table><tr><th>elapsed</th><td id="elapsed">…</td></tr>
<tr><th>answer rate (<span id="window"></span> s)</th><td><span id="rate">…</span> <span id="level"></span></td></tr>
<tr><th>calls ended per second</th><td id="cps">…</td></tr>
<tr><th>calls in progress</th><td id="active">…</td></tr>
<tr><th>callers waiting / with an agent</th><td id="queue">—</td></tr>
<tr><th>faults active</th><td id="faults">…</td></tr>
<tr><th>next</th><td id="next">…</td></tr></table>
<h2>Timeline</h2><ol id="timeline"></ol>
<script>
const token = new URLSearchParams(location.search).get("token") || "";
function set(id, text) { document.getElementById(id).textContent = text; }
async function poll() {
  try {
    const r = await fetch("state.json?token=" + encodeURIComponent(token));
    if (r.ok) {
      const s = await r.json();
      set("scenario", s.scenario); set("window", s.window);
      set("elapsed", s.elapsed.toFixed(1) + " s of " + s.duration + " s");
      const rate = document.getElementById("rate");
      rate.textContent = s.answer_rate === null ? "—" : (100 * s.answer_rate).toFixed(1) + " %";
      rate.className = s.level; set("level", s.level);
      set("cps", s.calls_per_second.toFixed(1)); set("active", s.in_progress);
      set("queue", s.queue ? s.queue[0] + " / " + s.queue[1] : "—");
      set("faults", s.faults.length ? s.faults.join("; ") : "none"); set("next", s.next || "—");
      const ol = document.getElementById("timeline"); ol.innerHTML = "";
      for (const [at, text] of s.timeline) {
        const li = document.createElement("li"); li.textContent = "+" + at.toFixed(1) + " s " + text;
        ol.appendChild(li);
      }
    }
  } finally { setTimeout(poll, 1000); }
}
poll();
</script></body></html>"""


class WebView(LiveView):
    """The live counts, served over HTTP while the drill runs."""

    def __init__(self, scenario: str, duration: float, window: float, bind: tuple[str, int],
                 token: str | None = None):
        super().__init__(Console(file=io.StringIO()), duration, window)
        self.scenario, self.token = scenario, token or secrets.token_urlsafe(18)
        self.timeline: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        view = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                given = urllib.parse.parse_qs(url.query).get("token", [""])[0] or \
                    self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not hmac.compare_digest(given.encode(), view.token.encode()):
                    return self._send(403, "text/plain", b"a token is needed (?token=)")
                if url.path == "/":
                    return self._send(200, "text/html; charset=utf-8", PAGE.encode())
                if url.path == "/state.json":
                    return self._send(200, "application/json", json.dumps(view.state()).encode())
                return self._send(404, "text/plain", b"not here")

            def do_POST(self):  # read-only
                self._send(405, "text/plain", b"read-only")

            def _send(self, status: int, kind: str, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(bind, Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="web-view", daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"

    def _line(self, text: str) -> None:
        with self.lock:
            self.timeline.append((time.time() - self.t0, text))

    def tick(self, run) -> None:
        self.active_calls = getattr(run, "load_in_flight", 0)
        self.next_step = getattr(run, "next_step", "")
        self.queue = getattr(run, "load_queue", None)

    def state(self) -> dict:
        elapsed, cps, rate = self._figures()
        with self.lock:
            timeline = list(self.timeline)
        return {"scenario": self.scenario, "elapsed": elapsed, "duration": self.duration,
                "window": self.window, "calls_per_second": cps, "answer_rate": rate,
                "level": alarm_level(rate), "in_progress": self.active_calls,
                "queue": list(self.queue) if self.queue else None,
                "faults": list(self.faults), "next": self.next_step, "timeline": timeline}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_bind(text: str) -> tuple[str, int]:
    """`8080` (loopback) or `HOST:PORT`."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--live-web {text!r}: give PORT or HOST:PORT")
    return host or "127.0.0.1", int(port)
