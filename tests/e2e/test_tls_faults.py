"""Faults on a TLS path, through a real Toxiproxy in front of the sandbox SBC's TLS listener:
a known delay shows in the handshake time, a reset shows as a lost trunk connection that the
next call opens again, and a signal during a stalled handshake still ends a drill at once."""
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import yaml

from harness.faults.base import lookup
from harness.lab import sandbox
from harness.load.entry_calls import call_options
from harness.metrics.calls import counts
from harness.metrics.records import read_events
from harness.ops.toxiproxy_api import client as _client
from harness.scenario.inventory import EntryPoint, TlsSpec, ToxiproxyRef
from harness.sip.uac import end_call, place_call, start_call
from tests.conftest import free_tcp_port, last_run, need, wait_for

DRILL = [sys.executable, "-m", "harness.cli"]
DELAY_MS = 300  # well away from SIP's timers (T1 500 ms) and from a loopback handshake (~5 ms)


@pytest.fixture
def tls_path(isolated):
    """The sandbox with TLS, and an entry point that reaches its TLS port through Toxiproxy."""
    inv = sandbox.up(sandbox.SandboxConfig(tls=True))
    direct = next(e for e in inv.entry_points if e.name == "carrier-tls")
    api_port = free_tcp_port()
    proc = subprocess.Popen([need("toxiproxy-server"), "-host", "127.0.0.1", "-port", str(api_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"127.0.0.1:{api_port}"
    try:
        wait_for(lambda: _client(api).running(), 10, what="Toxiproxy API")
        made = _client(api).create(upstream=direct.address, name="carrier-tls", listen="127.0.0.1:0")
        entry = EntryPoint(name="carrier-tls-proxied", address=made.listen, transport="tls",
                           tls=TlsSpec(ca_file=direct.tls.ca_file, server_name=direct.tls.server_name),
                           toxiproxy=ToxiproxyRef(api=api, proxy="carrier-tls"))
        yield inv, entry
    finally:
        proc.terminate()
        proc.wait(5)


def toxic(entry, type_, **params):
    """A real injector on the entry point, injected; call .undo() to take it away."""
    cls = lookup(type_)
    inj = cls(f"t-{type_}", entry, cls.Params.model_validate(params))
    recipe = inj.recipe()
    inj.inject()
    return lambda: cls.undo(recipe)


def test_a_known_delay_shows_in_the_handshake_time(tls_path):
    _, entry = tls_path
    opts = call_options(entry, hold=0.0, rtp=False, invite_timeout=6, bye_timeout=4)
    single = replace(opts, tls=replace(opts.tls, reuse=False))  # a handshake per call
    before = [place_call(entry.addr, single, entry.name) for _ in range(3)]
    undo = toxic(entry, "toxiproxy.latency", latency=DELAY_MS, stream="downstream")
    try:
        during = [place_call(entry.addr, single, entry.name) for _ in range(3)]
    finally:
        undo()
    assert all(r.outcome == "completed" for r in before + during), [r.reason for r in during]
    base = max(r.tls_handshake_ms for r in before)
    # TLS 1.3: one round trip after the TCP connection, so one delayed flight from the server;
    # the TCP connection itself is toxiproxy's own, not delayed (toxics act on the data)
    for r in during:
        assert DELAY_MS <= r.tls_handshake_ms <= DELAY_MS + base + 100, (r.tls_handshake_ms, base)
    print(f"handshake: {base:.1f} ms clean, "
          f"{[round(r.tls_handshake_ms) for r in during]} ms with {DELAY_MS} ms downstream")


def test_a_reset_drops_the_calls_on_the_trunk_and_the_next_call_reopens_it(tls_path):
    _, entry = tls_path
    opts = call_options(entry, hold=30.0, rtp=False, invite_timeout=6, bye_timeout=2)
    held = [start_call(entry.addr, opts, entry.name) for _ in range(3)]
    assert all(h is not None for _, h in held), [r.reason for r, _ in held]
    undo = toxic(entry, "toxiproxy.reset_peer", timeout=0)
    try:
        # the toxic resets the connection as soon as data crosses it: one call's BYE does it
        recs = [end_call(h) for _, h in held]
    finally:
        undo()
    after = place_call(entry.addr, replace(opts, hold=0.0), entry.name)
    # the calls on the reset connection ended as what happened to them: a connection lost,
    # not a SIP error and not a timeout; the next call opened the trunk again and said so
    for r in recs:
        assert r.outcome == "dropped" and "connection" in r.reason, r.reason
    assert after.outcome == "completed" and not after.tls_reused and after.tls_handshake_ms
    assert counts([r for r, _ in held] + [after])["tls_connections"] == 2


@pytest.mark.serial  # judged against the wall clock, as the other signal tests
def test_a_signal_during_a_stalled_handshake_ends_the_drill_within_a_second(tls_path, tmp_path):
    inv, entry = tls_path
    entry = entry.model_copy(update={"tls": entry.tls.model_copy(update={"reuse": False})})
    data = inv.model_copy(update={"entry_points": [entry]}).model_dump(mode="json",
                                                                       exclude_none=True)
    data["allowlist"] = [*data["allowlist"], entry.name]
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "s.yaml").write_text(f"""\
name: stalled-handshake
target: inv.yaml
duration: 30s
load: {{calls_per_second: 4, hold: 1s, rtp_share: 0%, invite_timeout: 8s}}
faults:
  - {{id: stall, type: toxiproxy.timeout, target: {entry.name}, timeout: 0, at: 2s}}
""")
    proc = subprocess.Popen(DRILL + ["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    def injected() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the drill ended before the stall: {proc.stdout.read()[-3000:]}")
        return any("fault_injected" in p.read_text()
                   for p in (tmp_path / "out").rglob("events.jsonl"))
    wait_for(injected, 30, what="the stall injected")
    time.sleep(1.0)  # calls are now stuck in their handshakes (the toxic holds every byte)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 3, out[-2000:]
    run = last_run(tmp_path / "out")
    evs = read_events(run / "events.jsonl")
    aborted = next(e for e in evs if e["event"] == "run_aborted")
    rolled = [e for e in evs if e["event"] == "fault_rolled_back"]
    print(f"SIGTERM with handshakes stalled: rolled back {aborted['rolled_back_in']:.2f} s after "
          f"it arrived, the process gone {took:.2f} s after it was sent")
    # the drill's own account, as for any signal: the stall rolled back within a second of
    # the signal's arrival, the calls stuck in their handshakes not waited for
    assert [e["fault_id"] for e in rolled] == ["stall"] and "SIGTERM" in aborted["reason"]
    assert max(e["ts"] for e in rolled) - aborted["requested_at"] < 1.0
    assert aborted["rolled_back_in"] < 1.0 and took < 5.0
    assert not _client(entry.toxiproxy.api).get_proxy("carrier-tls").toxics()  # toxic removed
