"""Bulk traffic saturating a carrier link, on real kernel queues: a veth pair into a network
namespace of our own is the link, a PBX node in that namespace the hotline, tc tbf on the
host's end the link's capacity (1.5 Mbit/s), net.bulk 2 Mbit/s of UDP across it. The calls
mark their RTP DSCP EF (load.rtp_dscp).

- Without a priority queue the link drops voice with the bulk: the calls lose at least the
  share of its offered packets the tbf dropped, by its own count (a flood of RTP-sized
  datagrams: a byte-limited queue would favour voice's small packets over 1,200-byte bulk).
- With `priority: ef` (htb: EF guaranteed the rate first) the voice class's queue drops
  nothing by its own count, the bulk's drops, and the calls hear no loss."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.metrics.records import read_events
from harness.report.calls_csv import read_calls_csv
from harness.sip.probe import options_ping
from tests.conftest import dropped_share, qdisc_drops, rtp_lost_between, run_scenario, \
    wait_for

# a flood of small datagrams (RTP's size): a byte-limited FIFO cannot favour the voice's
# small packets over it, as it does over 1,200-byte bulk (which mostly costs voice delay)
RATE_KBIT, BULK_KBIT, BULK_SIZE = 1500, 2000, 172


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


@pytest.fixture
def link(tmp_path):
    """A namespace with a PBX node, reached from the host over a veth pair (our own)."""
    n = os.getpid() % 200 + 20
    ns, host_if, ns_if = f"hd-bulk-{n}", f"hdbk{n}a", f"hdbk{n}b"
    host_ip, ns_ip = f"10.213.{n}.1", f"10.213.{n}.2"
    sh("ip", "netns", "add", ns)
    pbx = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        for argv in (["ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if],
                     ["ip", "link", "set", ns_if, "up"], ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", ns, *argv)
        pbx = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m",
                                "harness.lab.pbx", "--name", "pbx-1", "--listen",
                                f"{ns_ip}:5060", "--stats-file", str(tmp_path / "pbx.json")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: options_ping((ns_ip, 5060), timeout=0.3) == 200, 15, what="the PBX")
        yield {"host_if": host_if, "host_ip": host_ip, "ns_ip": ns_ip}
    finally:
        if pbx is not None:
            pbx.terminate()
            pbx.wait(10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def drill(tmp_path: Path, link: dict, priority: str):
    tmp_path.mkdir()
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({
        "name": "wan", "entry_points": [{"name": "carrier", "address": f"{link['ns_ip']}:5060",
                                         "caller_ip": link["host_ip"]}],
        "links": [{"name": "carrier-link"}], "allowlist": ["carrier-link"]}))
    return run_scenario(tmp_path, {
        "name": f"bulk-{priority}", "target": "inv.yaml", "duration": "20s", "seed": 4,
        "load": {"calls_per_second": 2, "hold": "4s", "rtp_dscp": "EF"},
        "faults": [
            {"id": "cap", "type": "net.rate", "target": "carrier-link", "at": "2s",
             "duration": "16s", "interface": link["host_if"], "rate_kbit": RATE_KBIT,
             "priority": priority},
            {"id": "bulk", "type": "net.bulk", "target": "carrier-link", "at": "8s",
             "duration": "8s", "to": f"{link['ns_ip']}:9", "rate_kbit": BULK_KBIT,
             "size": BULK_SIZE}],
        # the bulk drops SIP too where it shares the queue (it is not EF): judged here is
        # the voice
        "sla": {"answer_rate": None, "mos_p5": None, "dead_air": None, "one_way_audio": None,
                "failover_time": None, "traffic_shift": None, "dropped_call_rate": None}})


def run(tmp_path, link, priority):
    res, run_dir, summary = drill(tmp_path, link, priority)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    notes = {e["fault_id"]: e["note"] for e in read_events(run_dir / "events.jsonl")
             if e["event"] == "fault_rolled_back"}
    win = {f["fault_id"]: f for f in summary["faults"]}
    calls = read_calls_csv(run_dir / "calls.csv")
    before = rtp_lost_between(calls, win["cap"]["started_at"], win["bulk"]["started_at"])
    # the calls the bulk overlapped (where SIP shares the queue, a call set up late in the
    # window holds on past it)
    during = rtp_lost_between(calls, win["bulk"]["started_at"] + 0.5,
                              win["bulk"]["undo_started"], whole=False)
    return before, during, dropped_share(notes["cap"]), qdisc_drops(notes["cap"])


def test_bulk_over_a_capped_link_drops_voice_unless_ef_goes_first(tmp_path, link):
    plain = run(tmp_path / "plain", link, "none")
    ef = run(tmp_path / "ef", link, "ef")
    print(f"voice loss before/during bulk: one queue {plain[0]:.1%}/{plain[1]:.1%} (the tbf "
          f"dropped {plain[2]:.1%} of what it was offered), EF first {ef[0]:.1%}/{ef[1]:.1%} "
          f"(dropped {ef[2]:.1%}: {ef[3]})")
    assert plain[0] < 0.01 and ef[0] < 0.01  # the cap alone carries the calls
    # one queue: the bulk's excess is dropped from everyone, the voice too (its calls run
    # partly outside the window: a part of the tbf's share, counted over the whole cap)
    assert plain[1] > max(0.05, 0.3 * plain[2]), plain
    # EF first: the voice class dropped nothing by its own count, the bulk's all of it
    assert ef[3]["pfifo 110:"][1] == 0 and ef[3]["pfifo 120:"][1] > 0, ef
    assert ef[1] < 0.01, ef


def test_a_cap_and_a_bulk_of_a_sigkilled_drill_are_undone_by_recover(tmp_path, link,
                                                                        monkeypatch):
    """A drill SIGKILLed with the priority cap and the bulk sender in place leaves both
    behind (the sender runs in a session of its own, bounded by max_seconds); `drill recover`
    stops the sender and deletes the qdisc."""
    from harness.ops.procs import proc_state
    from harness.runner.engine import new_journal
    from tests.conftest import sigkill_after_injections
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({
        "name": "wan", "entry_points": [{"name": "carrier", "address": f"{link['ns_ip']}:5060",
                                         "caller_ip": link["host_ip"]}],
        "links": [{"name": "carrier-link"}], "allowlist": ["carrier-link"]}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "name": "bulk-killed", "target": "inv.yaml", "duration": "60s",
        "load": {"calls_per_second": 1, "hold": "2s"},
        "faults": [{"id": "cap", "type": "net.rate", "target": "carrier-link", "at": "1s",
                    "interface": link["host_if"], "rate_kbit": RATE_KBIT, "priority": "ef"},
                   {"id": "bulk", "type": "net.bulk", "target": "carrier-link", "at": "1s",
                    "to": f"{link['ns_ip']}:9", "rate_kbit": 500, "max_seconds": 120}]}))
    sigkill_after_injections(tmp_path / "s.yaml", tmp_path / "out", count=2)
    (bulk,) = [f for f in new_journal().open_faults() if f["type"] == "net.bulk"]
    sender = bulk["recipe"]["sender"]
    qdiscs = lambda: subprocess.run(["tc", "qdisc", "show", "dev", link["host_if"]],  # noqa: E731
                                    capture_output=True, text=True, timeout=10).stdout
    assert proc_state(sender) is not None and "qdisc htb 1:" in qdiscs()
    res = subprocess.run([sys.executable, "-m", "harness.cli", "recover"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "bulk stopped" in res.stdout, res.stdout
    assert proc_state(sender) is None and "htb" not in qdiscs()
    assert new_journal().open_faults() == []
