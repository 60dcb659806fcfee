"""The live view as a web page while a drill runs, looked at in Debian's headless Chromium:
the figures the page shows are the drill's (its fault, its answer rate and alarm level), the
page and its JSON refuse a request without the run's token, take no writes, listen on
loopback only, and are gone when the drill ends."""
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import yaml

from tests.conftest import light_drill, need, wait_for


DRILL = [sys.executable, "-m", "harness.cli"]


def status_of(url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_live_page_shows_the_running_drill_to_a_browser_with_the_token(isolated, tmp_path):
    s = light_drill()
    s["duration"], s["faults"][0]["duration"] = "40s", "25s"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(s))
    out = tmp_path / "out"
    proc = subprocess.Popen(DRILL + ["run", str(tmp_path / "s.yaml"), "-o", str(out),
                                     "--live-web", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        url = wait_for(lambda: next((m.group(0) for x in list(lines) if (m := re.search(
            r"http://127\.0\.0\.1:\d+/\?token=\S+", x))), None), 60, what="the live page's URL")
        base, token = url.split("/?token=")
        events = wait_for(lambda: next(out.glob("*/events.jsonl"), None), 60, what="events")
        wait_for(lambda: '"fault_injected"' in events.read_text(), 60, what="the fault")
        # no token, a wrong one: refused; a write: refused
        assert status_of(f"{base}/state.json") == 403
        assert status_of(f"{base}/state.json?token=nope") == 403
        assert status_of(f"{base}/?token={token}", data=b"x") == 405
        with urllib.request.urlopen(f"{base}/state.json?token={token}", timeout=5) as r:
            state = json.load(r)
        assert state["faults"] == ["kill-pbx-1"] and state["scenario"] == s["name"]
        assert state["calls_per_second"] > 0 and 0 <= state["answer_rate"] <= 1
        # the page, as a browser renders it once its script has polled
        chromium = need("chromium")
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              "--no-first-run", "--disable-background-networking",
                              f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=3000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120).stdout
        assert '<td id="faults">kill-pbx-1</td>' in dom, dom[-2000:]
        rate = re.search(r'<span id="rate" class="(\w+)">([0-9.]+) %</span>', dom)
        assert rate and rate.group(1) in ("green", "yellow", "orange", "red"), dom[-2000:]
        assert re.search(r"<li>\+[0-9.]+ s fault kill-pbx-1 injected", dom)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 1), "".join(lines)[-3000:]
    try:  # the drill is over: nothing listens there any more
        urllib.request.urlopen(f"{base}/state.json?token={token}", timeout=2)
        assert False, "the live page outlived the drill"
    except urllib.error.URLError:
        pass
