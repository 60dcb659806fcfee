"""`net.*` faults: iptables and tc inside a network namespace (needs root).

net.cut      DROP matching packets (protocol, port, peer), both directions
net.loss     DROP a random share (iptables `statistic`)
net.rate     cap egress bandwidth of an interface (tc tbf; `priority: ef`: tc htb with
             DSCP EF guaranteed the rate first)
net.bulk     bulk UDP across a link at a set rate (lab/bulk.py), bounded in time
net.latency  delay and jitter (tc netem) — refused with a clear error when the
             kernel lacks netem, as it does on our machines; udp.latency does
             the same in user space through a relay.

The namespace is the target's `netns:` — a name under /var/run/netns,
`pid:<PID>` (the network namespace of that process), or `container:<name>`
(a Docker container's, through its pid) — or, for net.cut and net.loss on a
target with a `docker:` selector and no `netns:`, that of every running
container it selects (a site's WAN cut as a cable cut is: interfaces stay up,
packets stop, where a Docker network disconnect removes the interface and a
process watching it by name never sees it come back) — or the host's when it
has none of these. Every iptables rule carries the comment
`hotline-drill:<fault id>`, so rollback deletes exactly the rules it added,
found again by that tag; a tc qdisc is removed only if it is still ours.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from harness.faults.base import FaultError, Injector, Undone, register
from harness.ops import OpsError
from harness.ops.docker_api import container_pid, matching
from harness.ops.procs import proc_state, spawn_bounded, stop_group
from harness.scenario.model import dscp_value

TAG = "hotline-drill:"


def netns_prefix(netns: str | None) -> list[str]:
    """The command prefix that runs a program inside the given network namespace."""
    if not netns:
        return []
    if netns.startswith("pid:"):
        return ["nsenter", "-t", netns[4:], "-n"]
    if netns.startswith("container:"):
        try:
            pid = container_pid(netns[10:])
        except OpsError as exc:
            raise FaultError(f"cannot find the network namespace of {netns}: {exc}") from exc
        return ["nsenter", "-t", str(pid), "-n"]
    return ["ip", "netns", "exec", netns]


def in_netns(netns: str | None, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    cmd = netns_prefix(netns) + argv
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except FileNotFoundError as exc:
        raise FaultError(f"{cmd[0]} is not installed (apt-get install iptables iproute2)") from exc
    if check and res.returncode != 0:
        raise FaultError(f"{' '.join(cmd)} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


def restore(netns: str | None, rules: list[list[str]]) -> float | None:
    """Apply rule changes (`-I ...`, `-D ...`) to the filter table in one atomic
    `iptables-restore --noflush` transaction; return when it committed, as the child
    itself read the clock right after (a harness busy with load can notice the exit
    100 ms late)."""
    text = "*filter\n" + "".join(shlex.join(r) + "\n" for r in rules) + "COMMIT\n"
    cmd = netns_prefix(netns) + ["sh", "-c", "iptables-restore --noflush && date +%s.%N"]
    try:
        res = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=10)
    except FileNotFoundError as exc:
        raise FaultError(f"{cmd[0]} is not installed (apt-get install iptables iproute2)") from exc
    if res.returncode != 0:
        raise FaultError(f"iptables-restore --noflush{' in ' + netns if netns else ''} failed: "
                         f"{res.stderr.strip() or res.stdout.strip() or 'exit ' + str(res.returncode)}")
    try:
        return float(res.stdout.split()[-1])
    except (IndexError, ValueError):
        return None


def tagged_rules(netns: str | None, tag: str) -> list[tuple[str, str]]:
    """(table, rule spec in `iptables -S` form) of every rule carrying the tag as its comment."""
    out = []
    for table in ("filter",):
        for line in in_netns(netns, ["iptables", "-t", table, "-S"]).stdout.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and any(a == "--comment" and b == tag
                                           for a, b in zip(words, words[1:])):
                out.append((table, line))
    return out


def has_netem(netns: str | None) -> bool:
    """Try a netem qdisc on lo of the namespace; the kernel says whether it knows it."""
    res = in_netns(netns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                   check=False)
    if res.returncode == 0:
        in_netns(netns, ["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
        return True
    return False


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str = Field("udp", pattern="^(udp|tcp|all)$")
    port: int | None = Field(None, ge=1, le=65535)
    peer: str | None = Field(None, description="IP address or CIDR of the other side")


class LossParams(Match):
    ratio: float = Field(gt=0, le=1)


class RateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interface: str = "eth0"
    rate_kbit: int = Field(gt=0)
    burst_kbit: int = Field(32, gt=0)
    latency_ms: int = Field(50, gt=0)
    priority: Literal["none", "ef"] = Field("none", description="ef: a priority queue under "
                                            "the cap sends packets marked DSCP EF first (a "
                                            "link that honours the voice marking)")
    first_dscp: list[Annotated[int, BeforeValidator(dscp_value), Field(ge=0, le=63)]] = Field(
        default_factory=list, max_length=8, description="with priority: ef, packets with "
        "these markings go first too (CS3: signalling and control, as a media relay's)")
    first_ports: list[int] = Field(default_factory=list, max_length=16, description="with "
                                   "priority: ef, packets from these source ports go first "
                                   "too (unmarked control traffic; a datagram larger than the "
                                   "MTU goes in fragments, and only the first carries the "
                                   "port: mark such traffic and use first_dscp)")

    @model_validator(mode="after")
    def _ports_need_priority(self):
        if (self.first_ports or self.first_dscp) and self.priority != "ef":
            raise ValueError("first_ports and first_dscp rank traffic in the priority queue: "
                             "give priority: ef")
        if any(not 0 < p < 65536 for p in self.first_ports):
            raise ValueError("first_ports: ports from 1 to 65535")
        return self


class BulkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(description="ip:port the bulk datagrams go to, across the link")
    rate_kbit: int = Field(gt=0, le=1_000_000)
    size: int = Field(1200, ge=64, le=1400, description="payload bytes per datagram (a flood "
                      "of small packets competes with voice packet for packet)")
    dscp: int = Field(0, ge=0, le=63, description="their marking (0: best effort)")
    max_seconds: int = Field(600, ge=1, le=86400, description="it stops by itself then")

    @field_validator("to")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        ipaddress.IPv4Address(host)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{v!r} is not ip:port")
        return v


class LatencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interface: str = "eth0"
    latency_ms: float = Field(gt=0)
    jitter_ms: float = Field(0, ge=0)


class _NetFault(Injector):

    @property
    def netns(self) -> str | None:
        return getattr(self.target, "netns", None)

    @property
    def namespaces(self) -> list[str | None]:
        """Where the rules go: the target's netns, else each running container its `docker:`
        selector picks (fixed at the first call, so inject and rollback see the same), else
        the host's."""
        if self.netns or getattr(self.target, "docker", None) is None:
            return [self.netns]
        if not hasattr(self, "_namespaces"):
            names = sorted(x.name for x in matching(self.target.docker) if x.status == "running")
            if not names:
                raise FaultError(f"no running container matches {self.target.name}'s `docker:` "
                                 "selector; a fault needs a live target")
            self._namespaces = [f"container:{n}" for n in names]
        return self._namespaces

    @property
    def where(self) -> str:
        try:
            spaces = self.namespaces
        except (FaultError, OpsError):  # planned while the target is down (a dry run)
            return "netns of its containers (none running now)"
        if spaces == [None]:
            return "netns (host)"
        return "netns " + ", ".join(spaces)

    @property
    def tag(self) -> str:
        return TAG + self.fault_id

    def prepare(self) -> None:
        for ns in self.namespaces:
            netns_prefix(ns)  # a container's namespace: the Docker client, imported now

    def verify(self) -> bool:
        return all(tagged_rules(ns, self.tag) for ns in self.namespaces)

    def recipe(self) -> dict:
        return {"netns": self.namespaces[0], "namespaces": self.namespaces, "tag": self.tag,
                "target": self.target.name}


class _DropFault(_NetFault):
    """Tagged iptables DROP rules, both directions, in each namespace."""

    def extra(self) -> list[str]:
        """Match arguments beyond protocol, port and peer (net.loss: its random share)."""
        return []

    def inject(self) -> None:
        # one iptables-restore per namespace: both directions cut in the same instant; the
        # namespaces (a site's containers) at once, as one cable cut
        rules = [["-I"] + r for r in _rules(self.params, self.extra(), self.tag)]
        self._committed = _each(self.namespaces, lambda ns: restore(ns, rules))

    def took_effect_at(self) -> float | None:
        return _latest(getattr(self, "_committed", []))

    def recipe(self) -> dict:
        # the rules themselves, so rollback is one iptables-restore like the inject: a listing
        # first would lengthen the fault's window by its own time (100 ms and more on a busy host)
        return {**super().recipe(), "rules": _rules(self.params, self.extra(), self.tag)}

    @classmethod
    def undo(cls, recipe: dict) -> Undone:
        counts: dict[str | None, int] = {}

        def remove(ns: str | None) -> float | None:
            if recipe.get("rules"):  # the usual case: the rules as injected, deleted at once
                try:
                    at = restore(ns, [["-D"] + r for r in recipe["rules"]])
                    counts[ns] = len(recipe["rules"])
                    return at
                except FaultError:  # some already gone (a half inject, a recover): by the tag
                    pass
            rules = [["-D"] + shlex.split(rule)[1:] for _, rule in tagged_rules(ns, recipe["tag"])]
            counts[ns] = len(rules)
            return restore(ns, rules) if rules else None  # all at once: one instant
        lifted = _each(recipe.get("namespaces") or [recipe["netns"]], remove)
        return Undone(f"{recipe['target']}: {sum(counts.values())} tagged iptables rule(s) removed"
                      + (f" in {len(counts)} namespaces" if len(counts) > 1 else ""), _latest(lifted))


def _each(namespaces: list[str | None], act) -> list:
    """`act` in every namespace at once (threads: each is an exec of its own); every one is
    tried, then the first error raised, so one dead container never leaves the rest as they
    were. Returns what each returned."""
    if len(namespaces) == 1:
        return [act(namespaces[0])]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(len(namespaces)) as pool:
        futures = [pool.submit(act, ns) for ns in namespaces]
    errors = [e for e in (f.exception() for f in futures) if e]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def _latest(times: list[float | None]) -> float | None:
    """When the change held in every namespace (a site is cut once all its links are)."""
    return None if not times or None in times else max(times)


def _match_args(m: Match) -> list[str]:
    args = [] if m.protocol == "all" else ["-p", m.protocol]
    return args


def _rules(m: Match, extra: list[str], tag: str) -> list[list[str]]:
    """INPUT and OUTPUT rules (both directions) for a match: chain and rule spec, to follow
    `-I` or `-D`."""
    rules = []
    for chain, port_opt, peer_opt in (("INPUT", "--dport", "-s"), ("OUTPUT", "--sport", "-d")):
        r = [chain] + _match_args(m)
        if m.port and m.protocol != "all":
            r += [port_opt, str(m.port)]
        if m.peer:
            r += [peer_opt, m.peer]
        rules.append(r + extra + ["-m", "comment", "--comment", tag, "-j", "DROP"])
    return rules


@register
class NetCut(_DropFault):
    """Drop every matching packet in both directions: the link is cut."""

    type = "net.cut"
    Params = Match

    def describe(self) -> str:
        p = self.params
        what = f"{p.protocol}" + (f" port {p.port}" if p.port else "") + (f" with {p.peer}" if p.peer else "")
        return f"iptables DROP of {what} in {self.where} of {self.target.name}; " \
               "rollback: delete the tagged rules"



@register
class NetLoss(_DropFault):
    """Drop a random share of matching packets (iptables statistic)."""

    type = "net.loss"
    Params = LossParams

    def describe(self) -> str:
        return f"iptables random drop of {self.params.ratio:.0%} of {self.params.protocol} in " \
               f"{self.where} of {self.target.name}; rollback: delete the tagged rules"

    def extra(self) -> list[str]:
        # per direction p gives a one-way loss of p (INPUT and OUTPUT see different packets)
        return ["-m", "statistic", "--mode", "random", "--probability", f"{self.params.ratio:.6f}"]


@register
class NetRate(_NetFault):
    """Cap egress bandwidth of an interface with a token bucket filter (tc tbf)."""

    type = "net.rate"
    Params = RateParams
    qdisc = "tbf"

    def describe(self) -> str:
        return f"{self.shaping()} on {self.params.interface} in {self.where} of " \
               f"{self.target.name}; rollback: delete that qdisc"

    def shaping(self) -> str:
        if self._ef_first():
            return f"tc htb {self.params.rate_kbit} kbit/s, DSCP EF first"
        return f"tc tbf {self.params.rate_kbit} kbit/s"

    @property
    def namespaces(self) -> list[str | None]:
        return [self.netns]  # one interface, named in the params: one namespace

    def prepare(self) -> None:
        if not self.netns and getattr(self.target, "docker", None) is not None:
            raise FaultError(f"{self.type} shapes one interface in one namespace; give "
                             f"{self.target.name} a `netns: container:<name>` in the inventory "
                             "(its `docker:` selector may pick several containers)")
        super().prepare()

    def qdisc_args(self) -> list[str]:
        p = self.params
        return ["rate", f"{p.rate_kbit}kbit", "burst", f"{p.burst_kbit}kbit", "latency", f"{p.latency_ms}ms"]

    def _ef_first(self) -> bool:
        return getattr(self.params, "priority", "none") == "ef"

    def _qdisc(self) -> str:
        return "htb" if self._ef_first() else self.qdisc

    def shaping_commands(self) -> list[list[str]]:
        """The tc commands that put the shaping in place. With priority: ef, HTB instead of
        a tbf: under one class at the rate, EF (TOS 0xb8 under mask 0xfc, by a u32 filter)
        is guaranteed all of it at priority 0, the rest gets what EF leaves. (Why not a prio
        qdisc under the tbf: sch_prio is missing from kernels like this project's CI
        machines', HTB is everywhere tc is.)"""
        dev = ["dev", self.params.interface]
        if not self._ef_first():
            return [["tc", "qdisc", "add", *dev, "root", "handle", "1:", self.qdisc,
                     *self.qdisc_args()]]
        p = self.params
        rate, burst = f"{p.rate_kbit}kbit", f"{p.burst_kbit}kbit"
        return [["tc", "qdisc", "add", *dev, "root", "handle", "1:", "htb", "default", "20"],
                ["tc", "class", "add", *dev, "parent", "1:", "classid", "1:1", "htb", "rate",
                 rate, "ceil", rate, "burst", burst],
                ["tc", "class", "add", *dev, "parent", "1:1", "classid", "1:10", "htb", "rate",
                 rate, "ceil", rate, "burst", burst, "prio", "0"],
                ["tc", "class", "add", *dev, "parent", "1:1", "classid", "1:20", "htb", "rate",
                 "8kbit", "ceil", rate, "burst", burst, "prio", "1"],
                # each class its own queue (100 packets), named so its drops are counted
                ["tc", "qdisc", "add", *dev, "parent", "1:10", "handle", "110:", "pfifo",
                 "limit", "100"],
                ["tc", "qdisc", "add", *dev, "parent", "1:20", "handle", "120:", "pfifo",
                 "limit", "100"],
                ["tc", "filter", "add", *dev, "parent", "1:", "protocol", "ip", "prio", "1",
                 "u32", "match", "ip", "dsfield", "0xb8", "0xfc", "flowid", "1:10"],
                # (each fragment of a datagram carries its marking, not its ports)
                *(["tc", "filter", "add", *dev, "parent", "1:", "protocol", "ip", "prio", "1",
                   "u32", "match", "ip", "dsfield", hex(dscp << 2), "0xfc", "flowid", "1:10"]
                  for dscp in p.first_dscp),
                *(["tc", "filter", "add", *dev, "parent", "1:", "protocol", "ip", "prio", "2",
                   "u32", "match", "ip", "sport", str(port), "0xffff", "flowid", "1:10"]
                  for port in p.first_ports),
                # ARP first too: a neighbour's address not resolved behind the bulk stops
                # everything to it, EF included
                ["tc", "filter", "add", *dev, "parent", "1:", "protocol", "arp", "prio", "3",
                 "u32", "match", "u32", "0", "0", "flowid", "1:10"]]

    def recipe(self) -> dict:
        return {**super().recipe(), "interface": self.params.interface, "qdisc": self._qdisc()}

    def inject(self) -> None:
        for argv in self.shaping_commands():
            in_netns(self.netns, argv)

    def verify(self) -> bool:
        out = in_netns(self.netns, ["tc", "qdisc", "show", "dev", self.params.interface]).stdout
        return f"qdisc {self._qdisc()} 1:" in out

    @classmethod
    def undo(cls, recipe: dict) -> str:
        out = in_netns(recipe["netns"], ["tc", "qdisc", "show", "dev", recipe["interface"]],
                       check=False).stdout
        if recipe["qdisc"] not in out:
            return f"{recipe['target']}: no {recipe['qdisc']} qdisc left on {recipe['interface']}"
        stats = in_netns(recipe["netns"], ["tc", "-s", "qdisc", "show", "dev",
                                           recipe["interface"]], check=False).stdout
        in_netns(recipe["netns"], ["tc", "qdisc", "del", "dev", recipe["interface"], "root"])
        return f"{recipe['target']}: {recipe['qdisc']} qdisc removed from " \
               f"{recipe['interface']}" + drops_note(stats)


@register
class NetLatency(NetRate):
    """Delay (and jitter) with tc netem; refused where the kernel has no netem."""

    type = "net.latency"
    Params = LatencyParams
    qdisc = "netem"

    def shaping(self) -> str:
        return f"tc netem delay {self.params.latency_ms:g}ms ±{self.params.jitter_ms:g}ms"

    def qdisc_args(self) -> list[str]:
        return ["delay", f"{self.params.latency_ms}ms", f"{self.params.jitter_ms}ms"]

    def inject(self) -> None:
        if not has_netem(self.netns):
            raise FaultError("this kernel lacks netem (sch_netem), so net.latency cannot work here; "
                             "use udp.latency on a relay in the path instead")
        super().inject()


def drops_note(stats: str) -> str:
    """What the qdiscs counted before they went (`tc -s qdisc show`): sent and dropped,
    each qdisc's own figures, for the rollback's note."""
    out = []
    for kind, handle, sent, dropped in re.findall(
            r"qdisc (\w+) ([0-9a-f]+:).*?\n\s*Sent \d+ bytes (\d+) pkt \(dropped (\d+)",
            stats, re.S):
        out.append(f"{kind} {handle} sent {sent} packets, dropped {dropped}")
    return "; " + ", ".join(out) if out else ""


@register
class NetBulk(_NetFault):
    """Bulk traffic across a link (harness/lab/bulk.py: UDP at `rate_kbit` to `to`), from the
    target's network namespace, as a backup job or a flood fills it; it competes with the
    calls for whatever the link carries (a net.rate cap, a real link)."""

    type = "net.bulk"
    Params = BulkParams

    def describe(self) -> str:
        p = self.params
        return f"bulk UDP at {p.rate_kbit} kbit/s ({p.size} B datagrams) to {p.to} from {self.where} of " \
               f"{self.target.name} (DSCP {p.dscp}), at most {p.max_seconds}s; rollback: stop it"

    @property
    def namespaces(self) -> list[str | None]:
        return [self.netns]

    def inject(self) -> None:
        p = self.params
        self._stats = os.path.join(tempfile.gettempdir(),
                                   f"hotline-drill-bulk-{os.getpid()}-{self.fault_id}.json")
        argv = netns_prefix(self.netns) + [
            sys.executable, "-m", "harness.lab.bulk", "--to", p.to, "--rate-kbit",
            str(p.rate_kbit), "--seconds", str(p.max_seconds), "--dscp", str(p.dscp),
            "--size", str(p.size),
            "--stats-file", self._stats]
        pid, start = spawn_bounded(argv)
        self._sender = {"sender": pid, "sender_start": start, "stats": self._stats}

    def recipe_after_inject(self) -> dict:
        return self._sender

    def verify(self) -> bool:
        """The sender's own count says it is sending (within 2 s)."""
        deadline = time.time() + 2.0
        while time.time() < deadline:
            try:
                if json.loads(open(self._stats).read())["datagrams"] > 0:
                    return True
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        return False

    @classmethod
    def undo(cls, recipe: dict) -> str:
        pid, start = recipe.get("sender"), recipe.get("sender_start")
        st = proc_state(pid) if pid else None
        if st is not None and st[1] == start:
            stop_group(pid)
        try:
            sent = json.loads(open(recipe["stats"]).read())
            os.unlink(recipe["stats"])
            return f"{recipe['target']}: bulk stopped after {sent['datagrams']} datagrams " \
                   f"({sent['bytes']} bytes)"
        except (OSError, ValueError, KeyError, TypeError):
            return f"{recipe['target']}: bulk stopped"

