"""SIGKILL the harness mid-drill with faults from five families active; `drill recover` leaves nothing."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from harness.ops.docker_api import client
from harness.faults.net import TAG, in_netns
from harness.ops.procs import proc_state, read_pid
from harness.ops.toxiproxy_api import proxy as _proxy
from harness.faults.udp import relay_command
from harness.runner.journal import Journal
from tests.conftest import wait_for
from tests.integration.test_docker_faults import fleet  # noqa: F401  (fixtures)
from tests.integration.test_net_command_faults import netns  # noqa: F401
from tests.integration.test_toxiproxy_faults import proxy  # noqa: F401

DRILL = [sys.executable, "-m", "harness.cli"]


def leftovers(inv: dict, tag: str, link_tp, ns: str) -> list[str]:
    """Every trace of the five faults that is still in place."""
    left = []
    pbx1 = next(n for n in inv["nodes"] if n["name"] == "pbx-1")
    if proc_state(read_pid(pbx1["process"]["pidfile"]) or 0) is None:
        left.append("pbx-1 not running")
    carrier = next(e for e in inv["entry_points"] if e["name"] == "carrier-a")
    if relay_command(carrier["relay"], {"op": "list"}, carrier.get("relay_token_file"))["toxics"]:
        left.append("udp toxic on carrier-a")
    c = client()
    paused = [x.name for x in c.containers.list(all=True, filters={"label": f"hotline-drill.test={tag}"})
              if c.api.inspect_container(x.id)["State"]["Paused"]]
    if paused:
        left.append(f"paused containers {paused}")
    if _proxy(link_tp.api, link_tp.proxy).toxics():
        left.append("toxiproxy toxic")
    if TAG in in_netns(ns, ["iptables", "-S"]).stdout:
        left.append("tagged iptables rules")
    return left


def test_sigkill_with_five_fault_families_then_recover(sandbox_up, isolated, fleet, proxy, netns,  # noqa: F811
                                                       tmp_path):
    tag, _, _ = fleet
    link, _ = proxy
    inv = json.loads(sandbox_up.model_dump_json(exclude_none=True))
    inv["name"] = "crash-test"
    inv["nodes"].append({"name": "media", "role": "media", "docker": {"label": f"hotline-drill.test={tag}"}})
    inv["links"] = [{"name": "trunk-tcp", "toxiproxy": {"api": link.toxiproxy.api, "proxy": "trunk-tcp"}},
                    {"name": "replication", "kind": "replication", "netns": netns}]
    inv["allowlist"] += ["media", "trunk-tcp", "replication"]
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    scenario = {
        "name": "crash-all-families", "target": "inv.yaml", "duration": "60s",
        "load": {"calls_per_second": 1, "hold": "2s"},
        "faults": [
            {"id": "kill-pbx-1", "type": "process.kill", "target": "pbx-1", "at": "1s"},
            {"id": "loss-a", "type": "udp.loss", "target": "carrier-a", "at": "1s", "ratio": 0.5},
            {"id": "pause-media", "type": "docker.pause", "target": "media", "at": "1s",
             "select": "count", "count": 2, "seed": 1},
            {"id": "slow-trunk", "type": "toxiproxy.latency", "target": "trunk-tcp", "at": "1s",
             "latency": 500},
            {"id": "cut-repl", "type": "net.cut", "target": "replication", "at": "1s",
             "protocol": "tcp", "port": 5432},
        ]}
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    proc = subprocess.Popen(DRILL + ["run", str(tmp_path / "crash.yaml"), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events = wait_for(lambda: next(out.glob("*/events.jsonl"), None), 30, what="events.jsonl")
    try:
        wait_for(lambda: events.read_text().count('"fault_injected"') == 5, 40, what="five faults")
    except AssertionError:
        proc.kill()
        raise AssertionError("the drill did not inject all five faults:\n" + proc.communicate()[0][-3000:])
    proc.kill()
    proc.communicate(timeout=10)

    assert len(leftovers(inv, tag, link.toxiproxy, netns)) == 5  # all five are really in place
    journal = Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl")
    assert len(journal.open_faults()) == 5

    res = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert leftovers(inv, tag, link.toxiproxy, netns) == []
    assert journal.open_faults() == []
    again = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to recover" in again.stdout
