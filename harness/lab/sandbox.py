"""The sandbox practice hotline: an SBC, PBX nodes and three carrier relays as local processes.

Everything listens on its own loopback address of one 127.x.y.0/24 block
(default 127.10.0.0/24), needs no root, and is found again through pidfiles
in the state folder, so `drill lab down` works from any shell.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.ops import SetupError
from harness.ops.procs import proc_state, read_pid, start_process
from harness.ops.state import private_token, state_home
from harness.lab.acd import TURN_AWAY
from harness.sip.dtmf import AGENT_MARKER, PROMPT_MARKER
from harness.lab.certs import server_certificate
from harness.lab.dns_server import dns_parts, listens_at, wait_answering
from harness.scenario.inventory import DigestAuth, EntryPoint, Link, Node, ProcessRef, \
    RegistrarRef, TargetInventory, TlsSpec, yaml_word
from harness.scenario.model import Distribution, Duration, Strict, loose_distribution
from harness.sip.probe import wait_until_answers

CARRIERS = ("carrier-a", "carrier-b", "carrier-c")
UNREACHABLE_PORT = 5099  # where a PBX that hides behind the SBC says it is (nothing listens)
RELAY_TOKEN = "relay.token"
TLS_PORT = 5061
SBC_NAME = "sbc.sandbox"  # the name on the SBC's certificate
LOCATION = "location.json"  # the SBC's registrar table (registrar.py)
SBC_PASSWORD = "sbc.password"  # the digest password the SBC asks for (auth: true)
AUTH_USER, AUTH_REALM = "drill", "sandbox"
STARTED_BY = "started-by-drill.json"  # a sandbox a drill started for itself, and which drill
CONTROL_PORT = 8474  # the carrier relays' control channel (Toxiproxy's API port, on its own address)
# with `dns`: the hotline's domain, served by dnsmasq (node dns) behind the DNS relay (link
# dns-path) on a port of their own (53 would need root); carrier-dns resolves it there
DOMAIN, DNS_PORT = "hotline.sandbox", 1053


@dataclass
class SandboxConfig:
    block: str = field(default_factory=lambda: os.environ.get("HOTLINE_DRILL_SANDBOX_BLOCK",
                                                              "127.10.0"))
    pbx_nodes: int = 2
    port: int = 5060
    # calls each PBX node holds at once before it answers 503 (None: no limit); a
    # finite number gives the hotline a capacity that a capacity search can find
    channels: int | None = field(default_factory=lambda: int(os.environ["HOTLINE_DRILL_SANDBOX_CHANNELS"])
                                 if os.environ.get("HOTLINE_DRILL_SANDBOX_CHANNELS") else None)
    health_check: bool = True      # False: the SBC never marks a node down (misconfigured)
    dispatch: str = "round-robin"  # or "hash" (of the Call-ID)
    failover_timer: float = 1.0    # seconds the SBC waits for a node before trying the next
    # PBX nodes that strip Record-Route and advertise a Contact the callers cannot reach
    # (a port nothing listens on), as PBXs behind an SBC do
    pbx_drops_record_route: bool = False
    outbound_proxy: bool = False   # the carriers send ACK/BYE back to their entry point
    # the SBC challenges every new INVITE (407, digest, realm "sandbox", user "drill"); the
    # password is made at `up` (private, in the state folder) and the carriers are given it
    auth: bool = False
    # the SBC also serves SIP over TLS on port 5061 (a CA and its certificate made in the state
    # folder), and entry point carrier-tls reaches it there, checking the certificate
    tls: bool = False
    # the SBC ends SDES-SRTP towards the carriers (the PBX nodes get RTP) and every entry
    # point requires it; "wrong-key": the SBC sends with a key other than the one it answered
    srtp: str = "off"
    # the PBX nodes are contact centres (lab/acd.py): {"groups": {name: agents}, "menu":
    # {key: group}, "ivr_time": s}; each node its own IVR, queues and agents, and ACD log
    contact_centre: dict | None = None
    # a DNS server for the hotline's domain and the DNS path to it: {"ttl": s}
    dns: dict | None = None

    @property
    def folder(self) -> Path:
        return state_home() / f"sandbox-{self.block}"

    @classmethod
    def for_drill(cls, options: dict | None) -> "SandboxConfig":
        """A scenario's `sandbox:` options; without any, the running sandbox's own (as
        `drill lab up` started it), else the defaults."""
        if options:
            return cls(**{k: v for k, v in options.items() if v is not None})
        return cls.saved() if any(status(cls()).values()) else cls()

    @classmethod
    def saved(cls) -> "SandboxConfig":
        """The config the sandbox on this block was last started with (else the defaults)."""
        path = cls().folder / "config.json"
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        data.pop("block", None)
        return cls(**data)

    def differs_from_running(self) -> list[str]:
        """What a running sandbox on this block was started with that this config is not."""
        saved = self.folder / "config.json"
        if not saved.exists():
            return []
        have = json.loads(saved.read_text())
        return [f"{k}: running {have[k]!r}, wanted {v!r}" for k, v in asdict(self).items()
                if k in have and have[k] != v]


def _proc(cfg: SandboxConfig, name: str, argv: list[str]) -> ProcessRef:
    d = cfg.folder
    return ProcessRef(pidfile=str(d / f"{name}.pid"), start=argv, cwd=str(Path.cwd()),
                      log=str(d / f"{name}.log"))


def _node_program(cfg: SandboxConfig, name: str) -> list[str]:
    """A PBX node, or with `contact_centre` a contact centre (IVR, queues, agents, ACD log)."""
    cc = cfg.contact_centre
    if not cc:
        return ["harness.lab.pbx"]
    cc = ContactCentre.model_validate(cc)
    return ["harness.lab.acd", "--log", str(cfg.folder / f"{name}.acd.jsonl"),
            "--ivr-time", f"{cc.ivr_time:g}", "--when-full", cc.when_full,
            *(["--inband"] if cc.inband else []), *(["--hold-music"] if cc.hold_music else []),
            *(["--handle", f"fixed:{cc.handle.fixed:g}" if cc.handle.fixed is not None
               else f"exponential:{cc.handle.exponential:g}"] if cc.handle else []),
            *(["--queue-limit", str(cc.queue_limit)] if cc.queue_limit is not None else []),
            *(x for n, g in cc.groups.items() for x in ("--group", f"{n}={g.agents}")),
            *(x for n, g in cc.groups.items() if g.registered
              for x in ("--registered", n, "--location-file", str(cfg.folder / LOCATION))),
            *(x for n, g in cc.groups.items() if g.overflow
              for x in ("--overflow", f"{n}={g.overflow.after:g}:{g.overflow.to}")),
            *(x for k, g in cc.menu.items() for x in ("--menu", f"{k}={g}"))]


def _dns_parts(cfg: SandboxConfig, token: str, **entry) -> tuple[Node, Link, EntryPoint]:
    """The DNS server (node dns), the DNS path in front of it (link dns-path) and carrier-dns;
    the SRV targets are carrier-a's relay (priority 10) and carrier-b's (20), as the SBCs of
    two sites."""
    sbcs = [(c, f"{cfg.block}.{21 + i}", cfg.port, 10 * (i + 1))
            for i, c in enumerate(CARRIERS[:2])]
    parts = dns_parts(cfg.folder, domain=DOMAIN, server=f"{cfg.block}.53:{DNS_PORT}",
                      path=f"{cfg.block}.54:{DNS_PORT}", token=token, sbcs=sbcs,
                      ttl=DnsOptions.model_validate(cfg.dns).ttl,
                      entry=entry)
    for p in (parts["node"], parts["link"]):
        p["process"]["cwd"] = str(Path.cwd())
    return Node(**parts["node"]), Link(**parts["link"]), EntryPoint(**parts["entry_point"])


def inventory(cfg: SandboxConfig | None = None) -> TargetInventory:
    """The sandbox's target inventory: every part is a drill target."""
    cfg = cfg or SandboxConfig()
    py = [sys.executable, "-m"]
    sbc_addr = f"{cfg.block}.1:{cfg.port}"
    pbx = [(f"pbx-{i}", f"{cfg.block}.{10 + i}:{cfg.port}") for i in range(1, cfg.pbx_nodes + 1)]
    nodes = [Node(name=n, role="pbx", sip=a,
                  process=_proc(cfg, n, py + [*_node_program(cfg, n), "--name", n, "--listen", a,
                                              "--stats-file", str(cfg.folder / f"{n}.stats.json")]
                                    + (["--channels", str(cfg.channels)] if cfg.channels else [])
                                    + (["--drop-record-route", "--contact",
                                        a.replace(f":{cfg.port}", f":{UNREACHABLE_PORT}")]
                                       if cfg.pbx_drops_record_route else [])))
             for n, a in pbx]
    sbc_argv = py + ["harness.lab.sbc", "--listen", sbc_addr,
                     "--stats-file", str(cfg.folder / "sbc.stats.json"),
                     "--location-file", str(cfg.folder / LOCATION),
                     "--health-check", "on" if cfg.health_check else "off",
                     "--dispatch", cfg.dispatch, "--fr-timer", f"{cfg.failover_timer:g}"]
    for n, a in pbx:
        sbc_argv += ["--node", f"{n}={a}"]
    auth = []
    if cfg.auth:
        # made here, not at `up`: the inventory is read before (validate, a dry run)
        password = private_token(cfg.folder / SBC_PASSWORD)
        sbc_argv += ["--auth-user", AUTH_USER, "--password-file", str(password),
                     "--realm", AUTH_REALM]
        auth = [DigestAuth(username=AUTH_USER, password_file=str(password), realm=AUTH_REALM)]
    if cfg.srtp != "off":
        sbc_argv += ["--srtp", cfg.srtp]
    if cfg.tls:
        ca, cert, key = server_certificate(cfg.folder / "tls", SBC_NAME, f"{cfg.block}.1")
        sbc_argv += ["--tls-port", str(TLS_PORT), "--tls-cert", str(cert), "--tls-key", str(key)]
    nodes.insert(0, Node(name="sbc", role="sbc", sip=sbc_addr, transports=["udp", "tcp"],
                         process=_proc(cfg, "sbc", sbc_argv)))
    entries, srtp = [], "off" if cfg.srtp == "off" else "require"
    markers = {}
    if cfg.contact_centre:
        cc = ContactCentre.model_validate(cfg.contact_centre)
        markers = {"prompt_marker": PROMPT_MARKER, "agent_marker": AGENT_MARKER,
                   "callback_marker": TURN_AWAY["callback"],
                   "announcement_marker": TURN_AWAY["announcement"], "markers_inband": cc.inband,
                   "agent_groups": {str(i): g for i, g in enumerate(cc.groups, 1)}}
    for i, c in enumerate(CARRIERS):
        addr = f"{cfg.block}.{21 + i}:{cfg.port}"
        control = f"{cfg.block}.{21 + i}:{CONTROL_PORT}"
        token = str(cfg.folder / RELAY_TOKEN)
        entries.append(EntryPoint(name=c, address=addr, relay=control, relay_token_file=token,
                                  outbound_proxy=cfg.outbound_proxy, auth=auth, srtp=srtp,
                                  **markers, process=_proc(
            cfg, c, py + ["harness.lab.relay", "--name", c, "--listen", addr,
                          "--upstream", sbc_addr, "--control", control, "--token-file", token])))
    if cfg.tls:  # straight to the SBC's TLS port, as a cloud carrier's trunk comes in
        entries.append(EntryPoint(name="carrier-tls", address=f"{cfg.block}.1:{TLS_PORT}",
                                  transport="tls", auth=auth, outbound_proxy=cfg.outbound_proxy,
                                  srtp=srtp, **markers,
                                  tls=TlsSpec(ca_file=str(ca), server_name=SBC_NAME)))
    links = []
    if cfg.dns:
        node, link, entry = _dns_parts(cfg, str(cfg.folder / RELAY_TOKEN), auth=auth, srtp=srtp,
                                       outbound_proxy=cfg.outbound_proxy, **markers)
        nodes.append(node)
        links.append(link)
        entries.append(entry)
    names = [n.name for n in nodes] + [e.name for e in entries] + [x.name for x in links]
    registrar = RegistrarRef(address=sbc_addr, domain=AUTH_REALM, auth=auth)  # the SBC
    return TargetInventory(name="sandbox", entry_points=entries, nodes=nodes, allowlist=names,
                           registrar=registrar, links=links)


def _parts(inv: TargetInventory):
    """The sandbox's processes (carrier-tls is the SBC's own TLS port, not a process)."""
    return [p for p in [*inv.nodes, *inv.entry_points, *inv.links] if p.process is not None]


def _answers(part, wait: float, stop) -> tuple[str, bool]:
    """(where it listens, whether it answered within `wait`): SIP OPTIONS, or for the DNS
    server and its path a query for the hotline's domain."""
    if "dns" in (getattr(part, "role", None), getattr(part, "kind", None)):
        host, port = listens_at(part)
        return f"{host}:{port}", wait_answering((host, port), DOMAIN, wait, stop)
    addr = getattr(part, "sip", None) or part.address
    host, _, port = addr.rpartition(":")
    return addr, wait_until_answers((host, int(port)), wait, stop=stop)


def status(cfg: SandboxConfig | None = None) -> dict[str, int | None]:
    """name -> pid of each running sandbox process (None when not running)."""
    out = {}
    for part in _parts(inventory(cfg or SandboxConfig.saved())):
        pid = read_pid(part.process.pidfile)
        out[part.name] = pid if pid and proc_state(pid) else None
    return out


def up(cfg: SandboxConfig | None = None, wait: float = 10.0,
       stop: Callable[[], bool] = lambda: False) -> TargetInventory:
    """Start whatever part of the sandbox is not running and wait until all answer SIP;
    `stop()` true (a signal) ends the wait: what started is left for `down` to stop."""
    cfg = cfg or SandboxConfig()
    cfg.folder.mkdir(parents=True, exist_ok=True)
    private_token(cfg.folder / RELAY_TOKEN)  # the relays' control channels ask for it
    inv = inventory(cfg)
    running = status(cfg)
    if not any(running.values()):
        (cfg.folder / "config.json").write_text(json.dumps(asdict(cfg)))
        # a sandbox started afresh keeps its own logs: what the last one logged (a run an
        # inconclusive drill made again, say) is not read as this one's
        for old in [*cfg.folder.glob("*.log"), *cfg.folder.glob("*.jsonl")]:
            old.unlink(missing_ok=True)
    # PBX nodes (and the DNS server) first, then the SBC, then the carriers in front of it
    for part in [*inv.nodes[1:], inv.nodes[0], *(e for e in inv.entry_points if e.process),
                 *inv.links]:
        if running.get(part.name) is None:
            p = part.process
            start_process(p.start, p.pidfile, p.cwd, p.log)
    for part in _parts(inv):
        addr, answers = _answers(part, wait, stop)
        if stop():
            return inv
        if not answers:
            log = Path(part.process.log)
            tail = log.read_text()[-800:] if log.exists() else "(no log)"
            down(cfg)
            raise RuntimeError(f"sandbox part {part.name} did not answer at {addr} "
                               f"within {wait:.0f}s; its log ends:\n{tail}")
    return inv


def down(cfg: SandboxConfig | None = None, grace: float = 3.0) -> list[str]:
    """Stop the sandbox's processes by pid (SIGCONT first, in case one is paused): all told
    at once, then waited for together, each killed if it outlives `grace`."""
    live = []
    for part in _parts(inventory(cfg or SandboxConfig.saved())):
        pid = read_pid(part.process.pidfile)
        if pid and proc_state(pid):
            for sig in (signal.SIGCONT, signal.SIGTERM):
                os.kill(pid, sig)
            live.append((part, pid))
        else:
            Path(part.process.pidfile).unlink(missing_ok=True)
    deadline = time.time() + grace
    while any(proc_state(pid) for _, pid in live) and time.time() < deadline:
        time.sleep(0.02)
    for part, pid in live:
        if proc_state(pid):
            os.kill(pid, signal.SIGKILL)
        Path(part.process.pidfile).unlink(missing_ok=True)
    return [part.name for part, _ in live]


class Overflow(Strict):
    after: Duration = Field(gt=0, le=3600, description="seconds waited before the other group "
                            "may take the caller too")
    to: str = Field(description="the group that may take them")


class SkillGroup(Strict):
    agents: int = Field(0, ge=0, le=500)
    registered: bool = Field(False, description="the group's agents are the phones registered "
                             "at the SBC (the scenario's `agents:`), not the contact centre's own")
    overflow: Overflow | None = None

    @model_validator(mode="after")
    def _someone_answers(self):
        if self.registered == bool(self.agents):
            raise ValueError("a skill group has its own agents (a number) or the registered "
                             "phones (`registered`), one of the two")
        return self


def _group(v):
    if v == "registered":  # `sales: registered`: the agents' phones registered at the SBC
        return {"registered": True}
    return {"agents": v} if isinstance(v, int) else v  # `sales: 3` is three agents


class ContactCentre(Strict):
    """The sandbox's PBX nodes as contact centres (lab/acd.py)."""

    groups: dict[str, Annotated[SkillGroup, BeforeValidator(_group)]] = Field(
        default_factory=lambda: {"sales": SkillGroup(agents=3)}, min_length=1, max_length=9,
        description="skill groups: agents, `registered` (the phones registered at the SBC), "
                    "or {agents|registered, overflow: {after, to}}; the first takes "
                    "callers without a choice; the agent marker is followed by the group's "
                    "place (1-9), so callers know who answered")
    menu: dict[str, str] = Field(default_factory=dict, description="the IVR menu: key -> group")
    ivr_time: Duration = Field(5.0, gt=0, le=120)
    queue_limit: int | None = Field(None, ge=0, description="callers waiting in a group before "
                                    "the next is turned away")
    inband: bool = Field(False, description="the markers are DTMF tones in the audio, not "
                         "RFC 4733 events (the entry points read tones)")
    handle: Annotated[Distribution, BeforeValidator(loose_distribution)] | None = Field(
        None, description="the agents' handle time (fixed or exponential): an agent hangs up "
        "when it is over; none: the caller ends the call")
    hold_music: bool = Field(False, description="callers waiting hear music (G.711 audio)")
    when_full: Literal["announcement", "callback"] = Field(
        "announcement", description="what a caller turned away hears: the failure announcement "
        "with the backup number (marker B) or a callback offer (marker C)")

    @model_validator(mode="after")
    def _names_groups(self):
        if self.handle is not None and self.handle.fixed is None and self.handle.exponential is None:
            raise ValueError("handle: the sandbox's agents take a fixed or an exponential "
                             "handle time")
        named = set(self.menu.values()) | {g.overflow.to for g in self.groups.values() if g.overflow}
        unknown = sorted(named - set(self.groups))
        if unknown:
            raise ValueError(f"menu or overflow names group(s) {', '.join(unknown)} that "
                             "`groups` lacks")
        if sum(g.registered for g in self.groups.values()) > 1:
            raise ValueError("one group at most takes the registered phones")
        loops = [n for n, g in self.groups.items() if g.overflow and g.overflow.to == n]
        if loops:
            raise ValueError(f"group(s) {', '.join(loops)} overflow to themselves")
        bad = [k for k in self.menu if len(k) != 1 or k not in "0123456789*#ABCD"]
        if bad:
            raise ValueError(f"menu keys must be single keys (0-9, *, #, A-D): {bad}")
        return self


class DnsOptions(Strict):
    """The sandbox's DNS: the hotline's domain on dnsmasq, behind a DNS relay."""

    ttl: int = Field(30, ge=0, le=86400, description="the TTL of every record (0: resolved "
                     "again for every call)")


class SandboxOptions(Strict):
    """A scenario's `sandbox:` options: how the practice hotline is built for this drill."""

    pbx_nodes: int = Field(2, ge=1, le=8)
    health_check: bool = Field(True, description="false: the SBC never marks a node down")
    dispatch: Literal["round-robin", "hash"] = "round-robin"
    failover_timer: Duration = Field(1.0, gt=0, le=60)
    channels: int | None = Field(None, ge=1)
    pbx_drops_record_route: bool = Field(False, description="PBX nodes strip Record-Route and "
                                         "advertise a Contact callers cannot reach")
    outbound_proxy: bool = Field(False, description="the carriers send ACK and BYE back to "
                                 "their entry point (the entry-point option of the same name)")
    auth: bool = Field(False, description="the SBC challenges every new INVITE with 407 "
                       "(digest, realm sandbox, user drill); the carriers get its password")
    tls: bool = Field(False, description="the SBC also serves SIP over TLS (port 5061, a "
                      "certificate from the sandbox's own CA) and entry point carrier-tls uses it")
    srtp: Annotated[Literal["off", "on", "wrong-key"], BeforeValidator(yaml_word)] = Field(
        "off", description="on: the SBC ends SDES-SRTP towards the carriers (the PBX nodes get "
        "RTP) and every entry point requires it; wrong-key: the SBC sends with a key other than "
        "the one it answered (a key mismatch, for practice)")
    contact_centre: ContactCentre | None = Field(
        None, description="the PBX nodes answer as contact centres: an IVR (prompt marker A), "
        "a menu, queues per skill group with overflow, agents answering with marker D and "
        "their group's key, a queue limit past which callers hear the failure announcement "
        "(B) or a callback offer (C), an ACD log each")
    dns: DnsOptions | None = Field(
        None, description="a DNS server for the hotline's domain hotline.sandbox (dnsmasq, "
        "node `dns`: NAPTR, SRV carrier-a priority 10 and carrier-b 20, A), the DNS path to it "
        "(link `dns-path`, where dns.* faults act) and entry point carrier-dns, which locates "
        "the SBCs through them (RFC 3263)")


class SandboxTarget:
    """`target: sandbox`: the embedded practice hotline, started for a drill and stopped after
    (unless a `drill lab up` sandbox is already running: that one is used and left running)."""

    name = "sandbox"
    Options = SandboxOptions

    @staticmethod
    def config(options: SandboxOptions | None) -> SandboxConfig:
        return SandboxConfig.for_drill(options.model_dump() if options else None)

    def inventory(self, options: SandboxOptions | None) -> TargetInventory:
        return inventory(self.config(options))

    def describe(self, options: SandboxOptions | None) -> list[str]:
        if options is None:
            return []
        o = options
        return [f"sandbox: {o.pbx_nodes} PBX node(s), SBC health check "
                f"{'on' if o.health_check else 'OFF (never marks a node down)'}, {o.dispatch} "
                f"dispatch, failover timer {o.failover_timer:g}s"
                + (", PBX nodes drop Record-Route" if o.pbx_drops_record_route else "")
                + (", carriers as outbound proxy" if o.outbound_proxy else "")
                + (", SBC asks for digest credentials (realm sandbox)" if o.auth else "")
                + (", carrier-tls over TLS to the SBC" if o.tls else "")
                + ({"on": ", SRTP to the SBC", "wrong-key": ", SRTP to the SBC (which sends "
                    "with the wrong key)"}.get(o.srtp, ""))
                + (f", DNS for {DOMAIN} (TTL {o.dns.ttl} s) through dns-path, carrier-dns "
                   "locating the SBCs by it" if o.dns else "")]

    @contextmanager
    def running(self, options: SandboxOptions | None, log: Callable[[str], None],
                stop: Callable[[], bool] = lambda: False):
        cfg = self.config(options)
        if any(pid is not None for pid in status(cfg).values()):
            differs = cfg.differs_from_running() if options else []
            if differs:
                raise SetupError("the running sandbox is not the one this scenario asks for ("
                                 + "; ".join(differs) + "); stop it with `drill lab down` and the "
                                 "drill starts its own")
            yield  # someone else's `drill lab up`: leave it running
            return
        log("starting the sandbox hotline (stopped again at the end)")
        cfg.folder.mkdir(parents=True, exist_ok=True)
        marker = cfg.folder / STARTED_BY
        marker.write_text(json.dumps({"pid": os.getpid()}))  # `drill recover` reads it after a SIGKILL
        try:
            up(cfg, stop=stop)
        except RuntimeError as exc:
            marker.unlink(missing_ok=True)  # up() stopped what it had started
            raise SetupError(str(exc)) from exc
        try:
            yield
        finally:
            down(cfg)
            marker.unlink(missing_ok=True)

    def recover(self) -> list[str]:
        """Stop every sandbox a drill started and did not live to stop (it was SIGKILLed)."""
        done = []
        for marker in state_home().glob(f"sandbox-*/{STARTED_BY}"):
            try:
                pid = json.loads(marker.read_text())["pid"]
            except (OSError, ValueError, KeyError):
                pid = None
            if pid and proc_state(pid):
                continue  # that drill is still running: its sandbox is in use
            saved = marker.parent / "config.json"
            cfg = SandboxConfig(**json.loads(saved.read_text())) if saved.exists() else None
            if cfg is not None:
                stopped = down(cfg)
                done.append(f"sandbox {cfg.block} (started by drill pid {pid}, gone): stopped "
                            + (", ".join(stopped) or "nothing was running"))
            marker.unlink(missing_ok=True)
        return done


TARGET = SandboxTarget()
