"""SIGKILL the harness mid-drill with faults from five families active; `drill recover` leaves
nothing. And a soak: SIGKILL or SIGTERM at a random moment of such a drill (setting up,
injecting, running, draining), then nothing left behind: after SIGTERM by itself, after
SIGKILL once `drill recover` has run. HOTLINE_DRILL_SOAK_TRIALS sets the number of trials
(2 here; bench/signal_soak.sh runs 20)."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.faults.net import TAG, in_netns
from harness.faults.base import relay_command
from harness.ops.docker_api import client
from harness.ops.procs import proc_state, read_pid
from harness.ops.toxiproxy_api import proxy as _proxy
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


def five_family_drill(sandbox_up, fleet, proxy, netns, tmp_path, duration="60s"):  # noqa: F811
    """An inventory and a scenario with one fault of each of five families, all at 1 s."""
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
        "name": "crash-all-families", "target": "inv.yaml", "duration": duration,
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
    return inv, tag, link


def test_sigkill_with_five_fault_families_then_recover(sandbox_up, isolated, fleet, proxy, netns,  # noqa: F811
                                                       tmp_path):
    inv, tag, link = five_family_drill(sandbox_up, fleet, proxy, netns, tmp_path)
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


TRIALS = int(os.environ.get("HOTLINE_DRILL_SOAK_TRIALS", "2"))


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_signal_at_a_random_moment_leaves_nothing_behind(sandbox_up, isolated, fleet, proxy,  # noqa: F811
                                                          netns, tmp_path, trial):
    rng = random.Random(trial)
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    delay = rng.uniform(0.0, 9.0)  # set-up, the injections at 1 s, the run, the drain after 6 s
    inv, tag, link = five_family_drill(sandbox_up, fleet, proxy, netns, tmp_path, duration="6s")
    proc = subprocess.Popen(DRILL + ["run", str(tmp_path / "crash.yaml"), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(delay)  # the random moment under test, not a wait for anything
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    what = f"{sig.name} after {delay:.2f}s (exit {proc.returncode})"
    journal = Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl")
    if sig == signal.SIGTERM:  # the harness itself must leave nothing, without recover
        if proc.returncode == -signal.SIGTERM:  # still starting Python: nothing had begun
            assert journal.entries() == [] and not (tmp_path / "out").exists(), what
        else:
            assert proc.returncode in (0, 1, 3, 4), what + "\n" + out[-3000:]
    else:
        res = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, what + "\n" + res.stdout + res.stderr
    assert leftovers(inv, tag, link.toxiproxy, netns) == [], what
    assert journal.open_faults() == [], what
