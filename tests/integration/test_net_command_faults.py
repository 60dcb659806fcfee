"""net.* (iptables/tc) in a network namespace the test creates, and the command escape hatch."""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.faults.base import FaultError, lookup
from harness.faults.net import has_netem, in_netns, tagged_rules
from harness.scenario.inventory import Link
from tests.conftest import need

PROBE = str(Path(__file__).parent.parent / "udp_probe.py")


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.fail("the net injector tests need root (CI runs as root)")
    need("iptables")
    name = f"hd-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=True)


def probe(ns, count=1000, size=64, interval=0.0005):
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, PROBE, "5099", str(count),
                          str(size), str(interval)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def build(type_, ns, **params):
    cls = lookup(type_)
    return cls(f"t-{type_}", Link(name="trunk", netns=ns), cls.Params.model_validate(params))


def test_cut_drops_everything_and_rollback_removes_only_its_rules(netns):
    in_netns(netns, ["iptables", "-A", "INPUT", "-p", "icmp", "-j", "ACCEPT"])  # not ours
    inj = build("net.cut", netns, protocol="udp", port=5099)
    recipe = inj.recipe()
    before = time.time()
    inj.inject()
    assert inj.verify() and len(tagged_rules(netns, recipe["tag"])) == 2
    assert before <= inj.took_effect_at() <= time.time()  # iptables-restore's own commit time
    assert probe(netns, 50)["received"] == 0
    before = time.time()
    undone = type(inj).undo(recipe)
    assert "2 tagged" in undone and before <= undone.at <= time.time()
    assert probe(netns, 50)["received"] == 50
    assert "-p icmp" in in_netns(netns, ["iptables", "-S"]).stdout  # the other rule stays
    assert "0 tagged" in type(inj).undo(recipe)  # twice is harmless


def test_rollback_of_a_half_removed_cut_finds_the_rest_by_its_tag(netns):
    inj = build("net.cut", netns, protocol="udp", port=5099)
    recipe = inj.recipe()
    inj.inject()
    in_netns(netns, ["iptables", "-D"] + recipe["rules"][0])  # one rule gone by other hands
    assert probe(netns, 20)["received"] == 0  # the other direction still cut
    assert "1 tagged" in type(inj).undo(recipe)
    assert probe(netns, 50)["received"] == 50 and not tagged_rules(netns, recipe["tag"])


def test_loss_ratio_measured_from_outside(netns):
    inj = build("net.loss", netns, protocol="udp", port=5099, ratio=0.3)
    recipe = inj.recipe()
    inj.inject()
    got = probe(netns, 2000)["received"] / 2000
    # the request meets the INPUT rule and the reply the OUTPUT rule: 0.7 * 0.7 survive
    assert got == pytest.approx(0.49, abs=0.05)
    assert "2 tagged" in type(inj).undo(recipe)  # the rules as written, random share and all
    assert probe(netns, 200)["received"] == 200 and not tagged_rules(netns, recipe["tag"])


def test_rate_cap_with_tbf(netns):
    inj = build("net.rate", netns, interface="lo", rate_kbit=128, burst_kbit=16)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    capped = probe(netns, 500, size=400, interval=0.001)["received"]  # ~1.6 Mbit/s offered each way
    assert 0 < capped < 500 * 0.5
    assert "removed" in type(inj).undo(recipe)
    assert probe(netns, 500, size=400, interval=0.001)["received"] == 500


def test_latency_needs_netem_and_says_so(netns):
    inj = build("net.latency", netns, interface="lo", latency_ms=50)
    if has_netem(netns):
        recipe = inj.recipe()
        inj.inject()
        assert probe(netns, 50, interval=0.01)["rtt_median"] >= 0.1  # 50 ms each way on lo
        type(inj).undo(recipe)
    else:
        with pytest.raises(FaultError, match="lacks netem"):
            inj.inject()
        assert "netem" not in in_netns(netns, ["tc", "qdisc", "show", "dev", "lo"]).stdout


def test_command_injector(tmp_path):
    flag = tmp_path / "fault-on"
    cls = lookup("command")
    inj = cls("cmd", Link(name="db-link"), cls.Params.model_validate({
        "inject": ["touch", str(flag)], "rollback": ["rm", "-f", str(flag)],
        "verify": ["test", "-e", str(flag)], "timeout": "5s"}))
    recipe = inj.recipe()
    inj.inject()
    assert flag.exists() and inj.verify()
    cls.undo(recipe)
    assert not flag.exists() and not inj.verify()
    cls.undo(recipe)  # rm -f: harmless twice
    slow = cls("slow", Link(name="x"), cls.Params.model_validate(
        {"inject": ["sleep", "5"], "rollback": ["true"], "timeout": "200ms"}))
    with pytest.raises(FaultError, match="did not finish within 0.2s"):
        slow.inject()
    bad = cls("bad", Link(name="x"), cls.Params.model_validate(
        {"inject": ["false"], "rollback": ["true"]}))
    with pytest.raises(FaultError, match="exited 1"):
        bad.inject()


def test_cut_inside_a_containers_namespace():
    from harness.ops.docker_api import client
    c = client()
    box = c.containers.run("hotline-drill/testnode", detach=True, labels={"hotline-drill.test": "netns"})
    try:
        ns = f"container:{box.id}"
        pid = c.api.inspect_container(box.id)["State"]["Pid"]
        run_probe = lambda: json.loads(subprocess.run(  # noqa: E731
            ["nsenter", "-t", str(pid), "-n", sys.executable, PROBE, "5099", "50", "64", "0.001"],
            capture_output=True, text=True, timeout=60).stdout)
        assert run_probe()["received"] == 50
        inj = build("net.cut", ns, protocol="udp", port=5099)
        recipe = inj.recipe()
        inj.inject()
        assert inj.verify() and run_probe()["received"] == 0
        assert not host_has_tagged_rules()  # the rules went into the container, not the host
        type(inj).undo(recipe)
        assert run_probe()["received"] == 50
    finally:
        box.remove(force=True)


def host_has_tagged_rules() -> bool:
    from harness.faults.net import TAG
    return TAG in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout


def test_shaping_a_docker_selector_without_a_netns_is_refused_before_anything_is_done():
    """tc shapes one named interface in one namespace; a selector may pick several
    containers (and their interfaces differ), so it is refused with the fix named."""
    from harness.scenario.inventory import DockerRef, Node
    cls = lookup("net.rate")
    inj = cls("shape", Node(name="site-a", role="site", docker=DockerRef(label="site=a")),
              cls.Params.model_validate({"rate_kbit": 64}))
    with pytest.raises(FaultError, match="netns: container:<name>"):
        inj.prepare()
