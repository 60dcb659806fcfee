"""docker.* against a real Docker engine: containers really die, pause, leave a network, and come back."""
import uuid

import pytest

from harness.faults.base import FaultError, lookup
from harness.faults.docker import choose, Selection
from harness.ops.docker_api import client
from harness.scenario.inventory import DockerRef, Node
from tests.conftest import wait_for

IMAGE = "hotline-drill/testnode"


@pytest.fixture
def fleet():
    """Three healthy test containers with one label on a network of their own."""
    try:
        c = client()
        c.images.get(IMAGE)
    except Exception as exc:  # never skip: a missing engine or image is a broken set-up
        pytest.fail(f"Docker engine or {IMAGE} missing ({exc}); run .ci/run "
                    "(lab/dockerd-up.sh, lab/base-image.sh, lab/build-images.sh)")
    tag = uuid.uuid4().hex[:8]
    net = c.networks.create(f"hd-{tag}", driver="bridge")
    boxes = [c.containers.run(IMAGE, detach=True, name=f"hd-{tag}-{i}", network=net.name,
                              labels={"hotline-drill.test": tag}) for i in range(3)]
    for b in boxes:
        wait_for(lambda b=b: c.api.inspect_container(b.id)["State"].get("Health", {})
                 .get("Status") == "healthy", 30, what="container healthy")
    yield tag, net.name, boxes
    for b in boxes:
        b.remove(force=True)
    net.remove()


def node(**ref):
    return Node(name="pbx", docker=DockerRef(**ref))


def build(type_, target, **params):
    cls = lookup(type_)
    return cls(f"t-{type_}", target, cls.Params.model_validate(params))


def state(cid):
    return client().api.inspect_container(cid)["State"]


def test_selection_modes_are_seeded():
    ids = [f"c{i}" for i in range(10)]
    assert choose(ids, Selection()) == sorted(ids)
    two = choose(ids, Selection(select="count", count=2, seed=1))
    assert len(two) == 2 and two == choose(ids, Selection(select="count", count=2, seed=1))
    assert len(choose(ids, Selection(select="percent", percent=25, seed=3))) == 3  # ceil(2.5)
    with pytest.raises(ValueError):
        Selection(select="count")


def test_kill_count_by_label_and_start_again(fleet):
    tag, _, boxes = fleet
    inj = build("docker.kill", node(label=f"hotline-drill.test={tag}"), select="count", count=2, seed=4)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    dead = [b.id for b in boxes if state(b.id)["Status"] != "running"]
    assert sorted(dead) == sorted(recipe["containers"]) and len(dead) == 2
    note = type(inj).undo(recipe)
    assert note.count("healthy") == 2
    assert all(state(b.id)["Status"] == "running" for b in boxes)
    type(inj).undo(recipe)  # twice is harmless


def test_pause_by_name_and_unpause(fleet):
    tag, _, boxes = fleet
    inj = build("docker.pause", node(name=f"hd-{tag}-1"))
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify() and state(boxes[1].id)["Paused"]
    assert not state(boxes[0].id)["Paused"]
    type(inj).undo(recipe)
    assert not state(boxes[1].id)["Paused"]


def test_stop_percent_and_restart(fleet):
    tag, _, boxes = fleet
    inj = build("docker.stop", node(label=f"hotline-drill.test={tag}"), select="percent",
                percent=100, grace=2)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    assert all(state(b.id)["Status"] == "exited" for b in boxes)
    type(inj).undo(recipe)
    assert all(state(b.id)["Health"]["Status"] == "healthy" for b in boxes)
    bounce = build("docker.restart", node(name=f"hd-{tag}-0"), grace=1)
    before = state(boxes[0].id)["StartedAt"]
    r = bounce.recipe()
    bounce.inject()
    assert bounce.verify() and state(boxes[0].id)["StartedAt"] != before
    assert "healthy" in type(bounce).undo(r)


def test_disconnect_and_reconnect(fleet):
    tag, net, boxes = fleet
    inj = build("docker.disconnect", node(name=f"hd-{tag}-2"), network=net)
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    assert net not in client().api.inspect_container(boxes[2].id)["NetworkSettings"]["Networks"]
    type(inj).undo(recipe)
    assert net in client().api.inspect_container(boxes[2].id)["NetworkSettings"]["Networks"]


def test_no_running_container_is_refused(fleet):
    with pytest.raises(FaultError, match="no running container"):
        build("docker.kill", node(label="hotline-drill.test=nothing-here")).recipe()


def test_a_kill_takes_effect_when_sent_other_signals_when_the_engine_saw_the_exit(fleet):
    import time
    tag, _, boxes = fleet
    inj = build("docker.kill", node(label=f"hotline-drill.test={tag}"), select="count", count=1,
                seed=4)
    recipe = inj.recipe()
    before = time.time()
    inj.inject()
    after = time.time()
    assert inj.verify()
    at = inj.took_effect_at()
    # a SIGKILL bites when sent: inside the inject call, and before the engine's own record
    # of the exit (the same clock: one kernel)
    assert at is not None and before <= at <= after, (before, at, after)
    from harness.faults.docker import finished_at
    (cid,) = recipe["containers"]
    assert at <= finished_at(state(cid)) <= at + 2.0
    term = build("docker.kill", node(label=f"hotline-drill.test={tag}"), select="count", count=1,
                 seed=4, signal="SIGTERM")
    term_recipe = term.recipe()
    term.inject()
    assert term.verify()
    (term_cid,) = term_recipe["containers"]
    # a signal the container may catch: the exit is the effect
    assert term.took_effect_at() == finished_at(state(term_cid))
    type(term).undo(term_recipe)
    type(inj).undo(recipe)
    assert build("docker.pause", node(label=f"hotline-drill.test={tag}")).took_effect_at() is None


def test_disconnect_of_a_site_leaves_containers_off_that_network_alone_and_keeps_addresses(fleet):
    import docker
    tag, _, boxes = fleet
    c = client()
    net = free_subnet()  # Docker's own pools may have handed the fleet's network any 172.x
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=str(net), gateway=str(net[1]))])
    wan = c.networks.create(f"hd-{tag}-wan", driver="bridge", ipam=ipam)
    fixed = str(net[7])
    try:
        c.api.connect_container_to_network(boxes[0].id, wan.name, ipv4_address=fixed)
        # the "site" is all three containers; only one of them is on the WAN
        inj = build("docker.disconnect", node(label=f"hotline-drill.test={tag}"), network=wan.name)
        recipe = inj.recipe()
        assert recipe["containers"] == [boxes[0].id]
        inj.inject()
        assert inj.verify()
        assert wan.name not in state_nets(boxes[0].id)
        type(inj).undo(recipe)
        assert state_nets(boxes[0].id)[wan.name]["IPAddress"] == fixed
        with pytest.raises(FaultError, match="is on network"):
            build("docker.disconnect", node(name=f"hd-{tag}-1"), network=wan.name).recipe()
    finally:
        for b in boxes[:1]:
            if wan.name in state_nets(b.id):
                c.api.disconnect_container_from_network(b.id, wan.name)
        wan.remove()


def free_subnet():
    """A /24 for a test network that no network of the engine overlaps now."""
    import ipaddress
    taken = [ipaddress.ip_network(cfg["Subnet"]) for n in client().api.networks()
             for cfg in ((n.get("IPAM") or {}).get("Config") or []) if "." in cfg.get("Subnet", "")]
    candidates = (ipaddress.ip_network(f"172.{second}.{third}.0/24")
                  for second in range(30, 15, -1) for third in range(200, 256))
    return next(net for net in candidates if not any(net.overlaps(t) for t in taken))


def state_nets(cid):
    return client().api.inspect_container(cid)["NetworkSettings"]["Networks"]


def test_net_cut_of_a_label_selector_cuts_every_container_and_undo_mends_all(fleet):
    """A site's cable cut: net.cut on a `docker:` selector puts its rules in each selected
    container's namespace. Checked by traffic: each container reaches a listener on the
    host's side of the bridge before, none during, all again after the undo."""
    import socket
    tag, net_name, boxes = fleet
    gateway = client().networks.get(net_name).attrs["IPAM"]["Config"][0]["Gateway"]
    with socket.socket() as listener:
        listener.bind((gateway, 0))
        listener.listen(16)
        port = listener.getsockname()[1]

        def reaches(box) -> bool:
            res = box.exec_run(["timeout", "2", "bash", "-c", f"echo > /dev/tcp/{gateway}/{port}"])
            return res.exit_code == 0

        assert all(reaches(b) for b in boxes)
        inj = build("net.cut", node(label=f"hotline-drill.test={tag}"), protocol="tcp",
                    peer=f"{gateway}/32")
        inj.prepare()
        recipe = inj.recipe()
        assert sorted(recipe["namespaces"]) == sorted(f"container:{b.name}" for b in boxes)
        inj.inject()
        assert inj.verify()
        assert not any(reaches(b) for b in boxes)
        note = type(inj).undo(recipe)
        assert note.endswith("6 tagged iptables rule(s) removed in 3 namespaces"), note
        assert all(reaches(b) for b in boxes)
        assert type(inj).undo(recipe).startswith("pbx: 0 tagged")  # twice is harmless
