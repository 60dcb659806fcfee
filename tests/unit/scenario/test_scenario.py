"""Scenario validation: every mistake named as file:line with a hint, exit code 2."""
import textwrap
import pytest
from typer.testing import CliRunner
from harness.cli import app
from harness.runner.plan import load_drill
from harness.scenario.model import parse_duration, parse_ratio
from harness.scenario.yamlload import InputError


GOOD = """\
name: t
duration: 30s
load:
  calls_per_second: 2
  hold: 4s
faults:
  - type: process.kill
    target: pbx-1
    at: 10s
    duration: 5s
"""


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def problems(tmp_path, text):
    with pytest.raises(InputError) as exc:
        load_drill(write(tmp_path, text))
    return exc.value.problems


def test_good_scenario_loads(tmp_path):
    d = load_drill(write(tmp_path, GOOD))
    assert d.scenario.duration == 30 and d.faults[0].spec.at == 10
    assert d.faults[0].params.signal == "SIGKILL"
    assert d.inventory.name == "sandbox"


@pytest.mark.parametrize("text,line,words", [
    (GOOD.replace("  hold: 4s", "  hodl: 4s"), 5, "unknown key 'hodl'"),
    (GOOD.replace("duration: 30s", "duration: thirty"), 2, "not a duration"),
    (GOOD.replace("process.kill", "process.kil"), 7, "did you mean 'process.kill'"),
    (GOOD.replace("target: pbx-1", "target: pbx-9"), 8, "'pbx-9' is not in target"),
    (GOOD.replace("at: 10s", "at: 40s"), 9, "not before the end"),
    (GOOD.replace("duration: 5s", "duration: 25s"), 10, "after the drill"),
    (GOOD.replace("    at: 10s\n", "    at: 10s\n    signal: SIGNOPE\n"), 10, "unknown signal"),
    (GOOD.replace("name: t\n", ""), 1, "missing required key 'name'"),
    (GOOD.replace("  hold: 4s", "  hold: 4s\n rtp: x"), 6, "YAML syntax error"),
    (GOOD.replace("  hold: 4s", "  hold: 4s\n  dial: agents"), 1, "needs the scenario's `agents:`"),
    (GOOD.replace("  hold: 4s", "  hold: 4s\n  dial: agent"), 6, "'hotline' or 'agents'"),
])
def test_errors_name_file_line_and_fix(tmp_path, text, line, words):
    msgs = problems(tmp_path, text)
    assert any(m.startswith(f"{tmp_path / 's.yaml'}:{line}:") and words in m for m in msgs), msgs


def test_target_not_on_allowlist_is_refused(tmp_path):
    write(tmp_path, """\
        name: staging
        entry_points: [{name: carrier-a, address: "127.0.0.1:5999"}]
        nodes: [{name: db-primary, role: db}, {name: pbx-1, sip: "127.0.0.1:5998"}]
        allowlist: [pbx-1]
        """, "inv.yaml")
    text = GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n").replace("pbx-1", "db-primary")
    msgs = problems(tmp_path, text)
    assert any("not on the allowlist" in m and ":9:" in m for m in msgs), msgs


@pytest.mark.parametrize("pbx1, words", [
    ('{name: pbx-1, sip: "127.0.0.1:5998", process: {pidfile: /run/db.pid}}', "pidfile /run/db.pid"),
    ('{name: pbx-1, sip: "127.0.0.1:5997"}', "SIP address 127.0.0.1:5997"),
    ('{name: pbx-1, docker: {name: db}}', "container name /db"),
])
def test_an_allowlisted_name_that_reaches_a_forbidden_node_is_refused(tmp_path, pbx1, words):
    """Allowlisted by identity, not by name: pbx-1 shares a handle with db-primary."""
    write(tmp_path, f"""\
        name: staging
        entry_points: [{{name: carrier-a, address: "127.0.0.1:5999"}}]
        nodes:
          - {{name: db-primary, role: db, sip: "127.0.0.1:5997", docker: {{name: db}},
             process: {{pidfile: /run/db.pid}}}}
          - {pbx1}
        allowlist: [pbx-1]
        """, "inv.yaml")
    msgs = problems(tmp_path, GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n"))
    assert any(f"acts on {words}" in m and "'db-primary' is not on the allowlist" in m
               for m in msgs), msgs


def test_inventory_addresses_are_checked_when_read(tmp_path):
    write(tmp_path, """\
        name: staging
        entry_points: [{name: carrier-a, address: "127.0.0.1:5999"}]
        nodes:
          - {name: pbx-1, sip: "127.0.0.1:70000"}
        allowlist: [pbx-1]
        """, "inv.yaml")
    msgs = problems(tmp_path, GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n"))
    assert any("inv.yaml:4:" in m and "not host:port" in m for m in msgs), msgs


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("  hold: 4s", "  hodl: 4s").replace("duration: 30s", "duration: -1")
    assert len(problems(tmp_path, text)) == 2


def test_cli_exit_code_2_and_nothing_run(tmp_path):
    bad = write(tmp_path, GOOD.replace("process.kill", "docker.nuke"))
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code == 2
    assert "unknown fault type 'docker.nuke'" in result.output
    assert "nothing was run or injected" in result.output
    assert CliRunner().invoke(app, ["validate", str(bad)]).exit_code == 2


def test_dry_run_prints_the_timeline(tmp_path):
    result = CliRunner().invoke(app, ["run", "--dry-run", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "10s: process.kill@pbx-1#1: SIGKILL to the process of pbx-1" in result.output
    assert "restart it" in result.output and "for 5s" in result.output


def test_dry_run_flags_a_command_fault_as_acting_outside_the_inventory(tmp_path):
    text = GOOD.replace("faults:\n", "faults:\n  - {type: command, target: pbx-1, at: 1s, "
                        "inject: [\"true\"], rollback: [\"true\"]}\n", 1)
    result = CliRunner().invoke(app, ["run", "--dry-run", str(write(tmp_path, text))])
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if "command@pbx-1" in x]
    assert lines and "ACTS OUTSIDE THE INVENTORY" in " ".join(lines)
    assert "OUTSIDE" not in " ".join(x for x in result.output.splitlines() if "process.kill" in x)


def test_shipped_scenarios_are_valid():
    result = CliRunner().invoke(app, ["validate", "scenarios/sandbox-pbx-node-loss.yaml",
                                      "scenarios/sandbox-steady-state.yaml"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("15s", 15), ("2m", 120), (3, 3.0),
                                          ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_ratios():
    assert parse_ratio("90%") == pytest.approx(0.9)
    with pytest.raises(ValueError):
        parse_ratio(1.5)


def test_every_registered_injector_describes_itself_with_defaults():
    """describe() must work for every type with only its required parameters."""
    from harness.faults.base import REGISTRY, load_families
    from harness.scenario.inventory import DockerRef, Link, Node, ToxiproxyRef
    load_families()
    required = {"udp.latency": {"latency_ms": 10}, "udp.loss": {"ratio": 0.1},
                "udp.reorder": {"ratio": 0.1}, "udp.duplicate": {"ratio": 0.1},
                "udp.rate": {"rate_kbps": 64}, "net.loss": {"ratio": 0.1},
                "net.rate": {"rate_kbit": 64}, "net.latency": {"latency_ms": 10},
                "docker.disconnect": {"network": "n"}, "docker.limit": {"cpus": 0.2},
                "command": {"inject": ["true"], "rollback": ["true"]},
                "dns.delay": {"delay_ms": 100}, "dns.wrong": {"address": "127.0.0.9"},
                "dns.ttl": {"ttl": 0}, "stress.memory": {"size": "64m"},
                "stress.disk": {"path": "/tmp", "size": "1m"},
                "net.bulk": {"to": "10.0.0.1:9", "rate_kbit": 100}}
    target = Node(name="x", sip="127.0.0.1:5060", docker=DockerRef(name="x"), netns="ns")
    link = Link(name="l", relay="127.0.0.1:1", netns="ns",
                toxiproxy=ToxiproxyRef(api="127.0.0.1:1", proxy="p"))
    for name, cls in REGISTRY.items():
        if name.startswith(("process.", "sipflood.")):
            continue  # these look up a live process / the svwar binary while describing
        t = link if name.startswith(("udp.", "toxiproxy.", "dns.")) else target
        for extra in ({}, {"select": "count", "count": 1}, {"select": "percent", "percent": 50}):
            if not name.startswith("docker.") and extra:
                continue
            params = cls.Params.model_validate({**required.get(name, {}), **extra})
            assert cls("f", t, params).describe(), name


def test_sandbox_options_shape_the_inventory_and_old_keys_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    one = load_drill(write(tmp_path, GOOD + "sandbox: {pbx_nodes: 1, health_check: false}\n"))
    assert [n.name for n in one.inventory.nodes] == ["sbc", "pbx-1"]
    sbc = one.inventory.find("sbc").process.start
    assert sbc[sbc.index("--health-check") + 1] == "off"
    msgs = problems(tmp_path, GOOD + "target: inv.yaml\nsandbox: {pbx_nodes: 1}\n")
    assert any("these options build the practice hotline" in m for m in msgs), msgs
    msgs = problems(tmp_path, GOOD + "metrics: {recovery_run: 5}\n")
    assert any("recovery_window" in m and "sliding window" in m for m in msgs), msgs


PROBE = GOOD + """\
probes:
  - type: postgres
    dsn: host=127.0.0.1,127.0.0.1 port=5432,5433 target_session_attrs=read-write
    rate: 10
"""


def test_a_postgres_probe_loads_and_bad_ones_name_their_line(tmp_path):
    d = load_drill(write(tmp_path, PROBE))
    assert d.scenario.probes[0].id == "postgres" and d.scenario.probes[0].rate == 10
    msgs = problems(tmp_path, PROBE.replace("type: postgres", "type: redis"))
    assert any(":12:" in m and "postgres" in m for m in msgs), msgs
    msgs = problems(tmp_path, PROBE.replace("rate: 10", "rate: 0"))
    assert any(":14:" in m and "greater than 0" in m for m in msgs), msgs


FAILOVER_INVENTORY = """\
    name: staging
    entry_points:
      - name: carrier-a
        address: "127.0.0.1:5999"
        fallback: ["127.0.0.2:5999"{more}]
        failover_timer: {timer}
    nodes:
      - {{name: pbx-1, sip: "127.0.0.1:5998"}}
    allowlist: [pbx-1]
    """


def test_fallback_addresses_load_and_bad_ones_name_their_line(tmp_path):
    write(tmp_path, FAILOVER_INVENTORY.format(more="", timer="1500ms"), "inv.yaml")
    drill = load_drill(write(tmp_path, GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n")))
    entry = drill.inventory.entry_points[0]
    assert entry.fallback_addrs == (("127.0.0.2", 5999),) and entry.failover_timer == 1.5
    write(tmp_path, FAILOVER_INVENTORY.format(more=', "site-b"', timer=40), "inv.yaml")
    msgs = problems(tmp_path, GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n"))
    assert any("inv.yaml:5:" in m and "not host:port" in m for m in msgs), msgs
    assert any("inv.yaml:6:" in m and "failover_timer" in m for m in msgs), msgs


def test_sipp_engine_is_refused_where_an_entry_point_fails_over(tmp_path):
    write(tmp_path, FAILOVER_INVENTORY.format(more="", timer=2), "inv.yaml")
    text = GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n").replace(
        "  hold: 4s\n", "  hold: 4s\n  engine: sipp\n  rtp_share: 0%\n")
    msgs = problems(tmp_path, text)
    assert any("s.yaml:7:" in m and "sipp cannot fail over" in m and "carrier-a" in m
               for m in msgs), msgs


def test_a_site_fault_takes_out_every_node_of_that_site():
    from harness.scenario.inventory import TargetInventory
    inv = TargetInventory.model_validate({
        "name": "two-sites", "entry_points": [{"name": "carrier-a", "address": "10.0.0.1:5060"}],
        "nodes": [{"name": "site-a", "role": "site", "site": "a", "docker": {"label": "s=a"}},
                  {"name": "sbc-a", "role": "sbc", "site": "a"},
                  {"name": "pbx-a1", "site": "a"}, {"name": "pbx-b1", "site": "b"},
                  {"name": "db-b", "role": "db", "site": "b"}],
        "links": [{"name": "replication", "kind": "replication"}]})
    assert inv.nodes_hit("site-a") == ["site-a", "sbc-a", "pbx-a1"]
    assert inv.nodes_hit("sbc-a") == ["sbc-a"]  # one node of a site: that node alone
    assert inv.nodes_hit("replication") == [] and inv.nodes_hit("carrier-a") == []


def test_the_split_brain_target_is_judged_where_a_probe_names_several_servers(tmp_path):
    assert load_drill(write(tmp_path, PROBE)).scenario.sla.primaries == 1
    assert load_drill(write(tmp_path, GOOD)).scenario.sla.primaries is None  # no probe
    one = PROBE.replace("host=127.0.0.1,127.0.0.1 port=5432,5433", "host=127.0.0.1 port=5432")
    assert load_drill(write(tmp_path, one)).scenario.sla.primaries is None
    uri = PROBE.replace("host=127.0.0.1,127.0.0.1 port=5432,5433 target_session_attrs=read-write",
                        "postgresql://drill@db-a:5432,db-b:5432/drill")
    assert load_drill(write(tmp_path, uri)).scenario.sla.primaries == 1
    off = PROBE + "sla: {primaries: null}\n"
    assert load_drill(write(tmp_path, off)).scenario.sla.primaries is None
    msgs = problems(tmp_path, one + "sla: {primaries: 1}\n")
    assert any("sla.primaries needs a probe whose dsn names two servers" in m for m in msgs), msgs


def test_an_engine_is_asked_what_it_can_do_not_named(tmp_path):
    from harness.load.engines import all_engines
    engines = all_engines()
    assert {"locust", "sipp"} <= set(engines)
    # the abilities the plan checks, declared by each engine
    assert engines["locust"].media and engines["locust"].fallback and engines["locust"].workers
    assert not (engines["sipp"].media or engines["sipp"].fallback or engines["sipp"].workers)
    msgs = problems(tmp_path, GOOD.replace("  hold: 4s\n", "  hold: 4s\n  engine: jmeter\n"))
    assert any("s.yaml:" in m and "'jmeter' is not an installed load engine" in m
               and "locust" in m and "sipp" in m for m in msgs), msgs


def test_an_engine_without_media_places_no_rtp_unless_told_to_and_then_refuses(tmp_path):
    from harness.runner.plan import load_drill
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("  hold: 4s\n", "  hold: 4s\n  engine: sipp\n"))
    assert load_drill(path).scenario.load.rtp_share == 0.0
    msgs = problems(tmp_path, GOOD.replace("  hold: 4s\n",
                                           "  hold: 4s\n  engine: sipp\n  rtp_share: 10%\n"))
    assert any("engine sipp sends no RTP" in m and "engine: locust" in m for m in msgs), msgs


def test_engines_are_asked_for_tls_srtp_and_digest(tmp_path):
    """SIPp (built without TLS here) is refused for a TLS entry point and for SRTP; it answers
    digest. A bare `srtp: off` (YAML 1.1's false) reads as the word."""
    write(tmp_path, 'name: s\nentry_points:\n  - {name: carrier-t, address: "127.0.0.1:5061", '
                    'transport: tls}\n  - {name: carrier-d, address: "127.0.0.1:5060", '
                    'auth: {username: u, password: p}, srtp: off}\n'
                    '  - {name: carrier-s, address: "127.0.0.1:5062", srtp: require}\n',
          "inv.yaml")
    text = GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n").replace(
        "  hold: 4s\n", "  hold: 4s\n  engine: sipp\n  rtp_share: 0%\n")
    msgs = problems(tmp_path, text)
    assert any("s.yaml:7:" in m and "sipp cannot speak SIP over TLS" in m and "carrier-t" in m
               and "engine: locust" in m for m in msgs), msgs
    assert any("sipp cannot offer SRTP" in m and "carrier-s" in m and "carrier-d" not in m
               for m in msgs), msgs
    assert not any("digest" in m for m in msgs), msgs


def test_only_an_engine_that_can_dials_the_agents(tmp_path):
    text = GOOD.replace("  hold: 4s", "  hold: 4s\n  dial: agents\n  engine: sipp") + \
        "agents: {count: 2}\n"
    msgs = problems(tmp_path, text)
    assert any(m.startswith(f"{tmp_path / 's.yaml'}:6:") and "cannot dial the agents" in m
               for m in msgs), msgs


def test_a_queue_of_registered_phones_needs_the_scenarios_agents(tmp_path):
    text = GOOD + "sandbox:\n  contact_centre: {groups: {sales: registered}}\n"
    msgs = problems(tmp_path, text)
    assert any(m.startswith(f"{tmp_path / 's.yaml'}:12:") and "add `agents:" in m
               for m in msgs), msgs


def test_an_entry_point_by_dns_is_a_domain_and_only_an_engine_that_resolves_takes_it(tmp_path):
    write(tmp_path, 'name: s\nentry_points:\n  - {name: carrier-d, domain: "sip:hotline.example", '
                    'resolver: "127.0.0.1:1053"}\nnodes: [{name: pbx-1}]\n'
                    'allowlist: [pbx-1]\n', "inv.yaml")
    with_target = GOOD.replace("name: t\n", "name: t\ntarget: inv.yaml\n")
    entry = load_drill(write(tmp_path, with_target)).inventory.entry_points[0]
    assert entry.domain == "hotline.example" and entry.located_by_dns
    assert entry.naptr_transport is None  # no transport given: NAPTR decides
    assert entry.shown == "hotline.example by DNS"
    msgs = problems(tmp_path, with_target.replace("  hold: 4s\n",
                                                  "  hold: 4s\n  engine: sipp\n  rtp_share: 0%\n"))
    assert any("sipp cannot locate an entry point by DNS" in m and "carrier-d" in m
               for m in msgs), msgs
    for bad, why in [('address: "127.0.0.1:5060", domain: hotline.example', "one of the two"),
                     ("resolver: 127.0.0.1:53, address: 127.0.0.1:5060", "`resolver` is for"),
                     ("domain: hotline.example:5060", "not a SIP domain"),
                     ("transport: udp", "give `address`")]:
        write(tmp_path, f"name: s\nentry_points:\n  - {{name: e, {bad}}}\n", "inv.yaml")
        msgs = problems(tmp_path, with_target)
        assert any("inv.yaml:" in m and why in m for m in msgs), (bad, msgs)


def test_the_sandbox_dns_option_adds_the_server_its_path_and_a_carrier_by_dns(tmp_path):
    d = load_drill(write(tmp_path, GOOD + "sandbox: {dns: {ttl: 0}}\n"))
    inv = d.inventory
    assert inv.find("dns").role == "dns" and "--local-ttl=0" in inv.find("dns").process.start
    assert inv.find("dns-path").relay and inv.find("carrier-dns").domain == "hotline.sandbox"
    assert {"dns", "dns-path", "carrier-dns"} <= set(inv.allowlist)
    msgs = problems(tmp_path, GOOD.replace("    target: pbx-1", "    target: dns-path").replace(
        "type: process.kill", "type: dns.wrong") + "sandbox: {dns: {ttl: 0}}\n")
    assert any("address" in m for m in msgs), msgs  # dns.wrong without its address
