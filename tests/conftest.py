"""Shared fixtures: an isolated sandbox per test (own loopback block, own state folder).

Tests run side by side under pytest-xdist (README's test command): whatever a test starts
is its own (a sandbox block per test and worker, ports picked free, network namespaces and
Docker test containers named by a random tag), except the container labs, which are one
each on this machine: their modules are one xdist group, so one worker runs them in turn.
"""
import contextlib
import itertools
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.sip.message import listener_port

_blocks = itertools.count(30)


def _block_octet() -> int:
    """This test process's third octet of a sandbox block: one per pytest-xdist worker (gw0,
    gw1, ...), so workers running side by side never share a loopback address; the pid's
    otherwise."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return 200 + int(worker[2:]) if worker.startswith("gw") else os.getpid() % 200


@contextlib.contextmanager
def generator_first(nice: int = -5):
    """Drills started in here (their load generator) get the CPU before the other xdist
    workers' tests, as a generator on a machine of its own would: a lab drill judges RTP
    timing, and its generator's own slip is ruled inconclusive, never a verdict."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def pytest_collection_modifyitems(config, items):
    """The serial part runs on two workers, one group each: every serial test that is not a
    lab's is in group `alone`, so two of them never run side by side; beside one of them runs
    at most one lab drill (each lab's tests are a group of their own). `solo` tests run after,
    with nothing beside (README's test command)."""
    for item in items:
        if item.get_closest_marker("serial") and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("alone"))


@pytest.fixture(autouse=True)
def _serial_first(request):
    """A serial test's processes get the CPU before anything else on the machine (the lab
    drills' generators have the same priority), as a drill on a machine of its own would."""
    if request.node.get_closest_marker("serial") is None:
        yield
        return
    with generator_first():
        yield


def staging_kill_drill(tmp_path: Path, inv, entry: dict, name: str) -> Path:
    """A user's own inventory of the running sandbox (one entry point, as given, and pbx-1)
    and a short drill that would kill pbx-1: for checks that must stop it before any fault."""
    import yaml
    pbx = inv.find("pbx-1").model_dump(exclude_none=True, exclude_defaults=True)
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(
        {"name": "staging", "entry_points": [entry], "nodes": [pbx], "allowlist": ["pbx-1"]}))
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: {name}\ntarget: inv.yaml\nduration: 6s\nload:\n  calls_per_second: 2\n"
        "faults:\n  - {id: kill, type: process.kill, target: pbx-1, at: 1s, duration: 2s}\n")
    return path


def wait_for(predicate, within: float, every: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; fail the test when `within` seconds pass."""
    deadline = time.time() + within
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def run_events(run_dir: Path) -> list[dict]:
    """The events a running drill has written so far: none while its folder is still being
    filled (the folder appears before events.jsonl is opened)."""
    from harness.metrics.records import read_events
    path = Path(run_dir) / "events.jsonl"
    return read_events(path) if path.exists() else []


def free_udp_port() -> int:
    """A port for a listener a tool binds later; below the ephemeral range, so a socket bound
    to port 0 meanwhile (a Toxiproxy proxy, a call's media) cannot take it first."""
    return listener_port(udp=True)


def udp_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Some socket is bound to host:port over UDP (read from /proc/net/udp): a tool we started
    is ready to receive, with no sleep standing in for it."""
    want = f"{''.join(f'{int(b):02X}' for b in reversed(host.split('.')))}:{port:04X}"
    rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(r.split()[1] == want for r in rows)


def free_tcp_port() -> int:
    """As free_udp_port, over TCP."""
    return listener_port(udp=False)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Env for one test: its own sandbox address block and state folder (journal, pidfiles)."""
    block = f"127.{next(_blocks)}.{_block_octet()}"
    env = {"HOTLINE_DRILL_SANDBOX_BLOCK": block, "HOTLINE_DRILL_STATE": str(tmp_path / "state"),
           # as a CI gate on a shared machine runs: a run the generator could not keep to
           # its schedule (exit 4, no verdict) is run again, up to twice
           "HOTLINE_DRILL_RERUN_INCONCLUSIVE": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env
    from harness.lab import sandbox
    sandbox.down()  # whatever the test left running, by pid


@pytest.fixture
def sandbox_up(isolated):
    from harness.lab import sandbox
    return sandbox.up()


def drill_ack(port: int, by: str, note: str = "") -> str:
    """On-call's acknowledgement, as a user sends it: the real `drill ack` command."""
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "harness.cli", "ack", "--url",
                          f"http://127.0.0.1:{port}/ack", "--by", by, "--note", note],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def run_scenario(folder, scenario: dict, *args):
    """Write a scenario, run it as a user does (`drill run FILE -o folder/out ARGS`), and return
    (the finished process, its one run folder, that folder's summary.json)."""
    import json
    import subprocess
    import sys

    import yaml
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    out = folder / "out"
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o", str(out),
                          *args], capture_output=True, text=True, timeout=300)
    assert out.exists(), res.stdout[-3000:] + res.stderr[-3000:]
    run = last_run(out)
    return res, run, json.loads((run / "summary.json").read_text())


def last_run(out: Path) -> Path:
    """The run folder whose outcome stands: the newest. Any before it must be inconclusive
    runs that `--rerun-inconclusive` ran again."""
    import json
    runs = sorted(d for d in out.iterdir() if d.is_dir() and d.name != "gamedays")
    assert runs, f"no run folder in {out}"
    for earlier in runs[:-1]:
        assert json.loads((earlier / "summary.json").read_text())["exit_code"] == 4, \
            f"{earlier} is a second run folder, and not an inconclusive one that was run again"
    return runs[-1]


def need(binary: str) -> str:
    path = shutil.which(binary)
    if not path:  # never skip: a missing real engine is a broken set-up, not a pass
        pytest.fail(f"{binary} is not installed; run .ci/run (or apt-get install it)")
    return path


def serve_http(answer=lambda request: 204) -> tuple[str, list, ThreadingHTTPServer]:
    """A local HTTP server on 127.0.0.1 that keeps every request it gets ({"method", "path",
    "headers", "body"}) and answers each with the status `answer(request)` gives;
    returns (base url, the requests, the server to shut down)."""
    got = []

    class Handler(BaseHTTPRequestHandler):
        def _keep(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            request = {"method": self.command, "path": self.path, "body": body,
                       "headers": dict(self.headers)}
            got.append(request)
            self.send_response(answer(request))
            self.end_headers()

        do_GET = do_POST = do_PUT = _keep

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", got, server


@pytest.fixture
def http_sink():
    """A local HTTP server that answers every request with 204 and keeps what it got:
    (base url, list of {"method", "path", "headers", "body"})."""
    url, got, server = serve_http()
    yield url, got
    server.shutdown()
    server.server_close()


def sigkill_after_injections(scenario_path, out, count: int = 1) -> None:
    """Run a drill as a user does and SIGKILL it once `count` faults are injected (by its
    events.jsonl): what `drill recover` is there for."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(scenario_path),
                             "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        events = wait_for(lambda: next(Path(out).glob("*/events.jsonl"), None), 30,
                          what="events.jsonl")
        wait_for(lambda: events.read_text().count('"fault_injected"') == count, 30,
                 what=f"{count} fault(s) injected")
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def rtp_lost_between(calls, lo: float, hi: float, whole: bool = True) -> float:
    """The share of the calls' RTP lost, both ways (what we received of what the far end
    sent, and what its receiver reports say it received of ours), over the calls whose whole
    hold lies in [lo, hi] (`whole` false: whose hold overlaps it); NaN when none does."""
    inside = [c for c in calls if c.answered_at and (
        lo <= c.answered_at and c.answered_at + c.hold_planned <= hi if whole
        else c.answered_at < hi and c.answered_at + c.hold_planned > lo)]
    sent = sum(c.rtp_expected + c.rtp_up_expected for c in inside)
    got = sum(c.rtp_received + c.rtp_up_received for c in inside)
    return 1 - got / sent if sent else float("nan")


def qdisc_drops(note: str) -> dict[str, tuple[int, int]]:
    """Each qdisc's (packets sent, dropped) from a net.rate rollback's note (the kernel's own
    count: `tc -s qdisc`), by kind and handle ("tbf 1:", "pfifo 110:")."""
    import re
    return {k: (int(a), int(b)) for k, a, b in
            re.findall(r"(\w+ [0-9a-f]+:) sent (\d+) packets, dropped (\d+)", note)}


def dropped_share(note: str) -> float:
    """The share of what the cap was offered that its qdiscs dropped."""
    counts = qdisc_drops(note)
    root = next(v for k, v in counts.items() if k.endswith(" 1:"))
    dropped = sum(d for _, d in counts.values())
    return dropped / (root[0] + dropped)


def light_drill() -> dict:
    """tests/e2e's short node-loss drill without RTP: for tests whose subject is the drill's
    record elsewhere (a trace, a dashboard, a page), not its voice; the calls' media would
    only load a shared machine."""
    import yaml
    s = yaml.safe_load((Path(__file__).parent / "e2e/scenarios/short-node-loss.yaml").read_text())
    s["load"]["rtp_share"] = "0%"
    return s


def free_port() -> int:
    """A TCP port free on loopback now (a server started on it may still lose it to another)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
