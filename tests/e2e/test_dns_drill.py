"""Drills on a hotline the carriers find by DNS (RFC 3263), on the sandbox: dnsmasq serves
hotline.sandbox (NAPTR, SRV carrier-a priority 10 and carrier-b 20, A) behind the DNS relay,
and carrier-dns locates the SBCs through them.

- SERVFAIL for 6 s with TTL 0: every call asks DNS, and the calls that fail with cause dns
  are exactly the relay's SERVFAIL answers, one each, each while that call resolved; every
  other call is answered.
- The same with TTL 300: the carrier's cache carries the window; no call fails, the relay
  answered no query on the rule, and the report says the calls came from the cache.
- Site A's path SIGKILLed: calls go to SRV priority 20 (carrier-b) after the entry point's
  failover timer, and the SBC's own log names the path each call came in by.
- A SIGKILLed drill's SERVFAIL rule is removed by `drill recover`."""
import re
import subprocess
import sys

import pytest
import yaml

from harness.faults.base import relay_command
from harness.lab import sandbox
from harness.report.calls_csv import read_calls_csv
from harness.sip.uac import HEALTH_CALL_PREFIX
from tests.conftest import run_scenario, sigkill_after_injections

SCENARIOS = "scenarios"
DRILL = [sys.executable, "-m", "harness.cli"]


def scenario(name: str, **sandbox_options) -> dict:
    s = yaml.safe_load(open(f"{SCENARIOS}/{name}.yaml"))
    s["sandbox"]["dns"].update(sandbox_options)
    return s


def rule_hits(rule: str, run: dict) -> list[float]:
    """When the DNS relay answered a query on `rule` during the run, by its own log (which
    also holds a run before it, where an inconclusive run was run again)."""
    path = sandbox.SandboxConfig().folder / "dns-path.rules.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted(float(x.split()[0]) for x in lines if x.split()[1] == rule
                  and run["started_at"] <= float(x.split()[0]) <= run["ended_at"])


def test_servfail_with_ttl_0_fails_exactly_the_calls_that_asked_dns(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, scenario("sandbox-dns-servfail", ttl=0))
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]  # answer rate missed
    calls = sorted(read_calls_csv(run / "calls.csv"), key=lambda r: r.started_at)
    fault = summary["faults"][0]
    failed = [r for r in calls if r.cause == "dns"]
    hits = rule_hits("drill-dns-servfail", summary["run"])
    assert len(failed) == len(hits) >= 20  # 4 calls/s for 6 s
    for call, hit in zip(failed, hits):  # each SERVFAIL came while that call was resolving
        assert call.started_at <= hit <= call.started_at + call.dns_ms / 1000, call.call_id
    assert all(r.answered and r.dns == "resolved" for r in calls if r.cause != "dns")
    inside = [r for r in calls if fault["started_at"] + 0.05 < r.started_at
              < fault["ended_at"] - 0.05]
    assert inside and all(r.cause == "dns" for r in inside)
    d = summary["dns"]
    assert d["failed"] == d["per_fault"][0]["failed"] == len(failed)
    assert d["resolved"] == len(calls) - len(failed) and d["cache"] == 0


def test_servfail_with_a_long_ttl_is_carried_by_the_cache(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, scenario("sandbox-dns-servfail", ttl=300))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    calls = read_calls_csv(run / "calls.csv")
    assert calls and all(r.answered and r.dns == "cache" for r in calls)
    assert rule_hits("drill-dns-servfail", summary["run"]) == []  # nobody asked DNS then
    during = summary["dns"]["per_fault"][0]
    assert during["failed"] == 0 and during["cache"] == during["calls"] > 20
    assert "from the cache" in res.stdout


def sbc_sources() -> dict[str, str]:
    """Call-ID -> the address the SBC got its INVITE from (the SBC's own log)."""
    log = (sandbox.SandboxConfig().folder / "sbc.log").read_text()
    return dict(re.findall(r"invite (\S+) from (\S+)", log))


def test_srv_failover_moves_calls_to_the_next_priority_while_site_a_is_dead(isolated, tmp_path):
    res, run, summary = run_scenario(tmp_path, scenario("sandbox-dns-srv-failover"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    calls = sorted(read_calls_csv(run / "calls.csv"), key=lambda r: r.started_at)
    assert all(r.answered for r in calls)
    fault = summary["faults"][0]
    pre = [r.pdd for r in calls if r.started_at < fault["started_at"]]
    timer = 2.0  # the entry point's failover_timer (its default)
    dead = [r for r in calls if fault["started_at"] + 0.1 < r.started_at
            < fault["undo_started"] - timer]
    assert len(dead) >= 12
    for r in dead:  # tried A, no answer within the timer, then B
        assert (r.entry_target, r.failovers) == ("carrier-b.hotline.sandbox", 1), r.call_id
        assert r.pdd == pytest.approx(timer + max(pre), abs=0.25), r.call_id
    for r in calls:
        if r.started_at < fault["started_at"] or r.started_at > fault["ended_at"] + 1:
            assert (r.entry_target, r.failovers) == ("carrier-a.hotline.sandbox", 0), r.call_id
    # the SBC's count: each call came in by the path the harness says it took (its log also
    # holds the calls of a run before this one, where an inconclusive run was run again)
    ours = {r.call_id: r.entry_address.split(":")[0] for r in calls}
    seen = sbc_sources()
    assert {k: seen.get(k) for k in ours} == ours
    if len(list(run.parent.glob("*/calls.csv"))) == 1:  # one run: the SBC saw no other call
        assert {k for k in seen if not k.startswith(HEALTH_CALL_PREFIX)} == set(ours)
    targets = summary["dns"]["targets"]
    assert targets["carrier-b.hotline.sandbox"] == sum(r.failovers == 1 for r in calls)


def test_a_dns_rule_of_a_sigkilled_drill_is_removed_by_recover(isolated, tmp_path):
    cfg = sandbox.SandboxConfig(pbx_nodes=1, dns={"ttl": 0})
    inv = sandbox.up(cfg)  # `drill lab up`'s: the drill leaves it running
    path = next(x for x in inv.links if x.name == "dns-path")
    s = scenario("sandbox-dns-servfail")
    s["duration"], s["faults"][0]["at"] = "60s", "1s"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(s))
    sigkill_after_injections(tmp_path / "s.yaml", tmp_path / "out")
    listed = relay_command(path.relay, {"op": "list"}, path.relay_token_file)["toxics"]
    assert [t["name"] for t in listed] == ["drill-dns-servfail"]
    res = subprocess.run(DRILL + ["recover"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert relay_command(path.relay, {"op": "list"}, path.relay_token_file)["toxics"] == []
    assert "drill-dns-servfail removed" in res.stdout
