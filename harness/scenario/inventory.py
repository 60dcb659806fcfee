"""The target inventory: what the staging hotline is made of and what a drill may touch."""
from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, BaseModel, ConfigDict, Field, PrivateAttr, \
    model_validator

from harness.ops.secrets import remember_secret
from harness.scenario.model import Duration

KEY = r"^[0-9*#A-D]$"  # one DTMF key: a marker a contact centre sends


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")


def _host_port(text: str) -> str:
    """`host:port` with a port 1-65535: checked when the inventory is read, not when a run
    first sends to it."""
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port (a port from 1 to 65535), e.g. 10.0.0.5:5060")
    return text


def _host(text: str) -> str:
    if not _HOST.match(text):
        raise ValueError(f"{text!r} is not a host name or IPv4 address")
    return text


def _sip_domain(text: str) -> str:
    """A SIP domain as RFC 3263 resolves it: `hotline.example`, or a URI `sip:hotline.example`
    (the scheme is dropped; `sips:` asks for TLS through `transport`)."""
    bare = re.sub(r"^sips?:", "", text.strip())
    if not _HOST.match(bare) or ":" in bare or bare.replace(".", "").isdigit():
        raise ValueError(f"{text!r} is not a SIP domain (a DNS name, no port), e.g. "
                         "hotline.example or sip:hotline.example")
    return bare.rstrip(".")


Address = Annotated[str, AfterValidator(_host_port)]
Host = Annotated[str, AfterValidator(_host)]


class ProcessRef(Strict):
    """How to find and restart a local process (the `process` injector's handle).

    One of: `pidfile` (re-read at every step, so a restart is followed), a fixed
    `pid` (cannot be restarted by us: `start` is refused with it), or a
    `systemd_unit` (signalled and restarted through systemctl, where systemd runs).
    """

    pidfile: str | None = None
    pid: int | None = Field(None, ge=2)
    systemd_unit: str | None = None
    start: list[str] = []
    cwd: str | None = None
    log: str | None = None

    @model_validator(mode="after")
    def _one_handle(self):
        given = [k for k in ("pidfile", "pid", "systemd_unit") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("process: give exactly one of pidfile, pid, systemd_unit")
        if self.pid and self.start:
            raise ValueError("process: a fixed pid cannot be restarted; use a pidfile with start")
        return self


class DockerRef(Strict):
    """Which containers make up a node: by name, by label (k=v), or by compose service."""

    name: str | None = None
    label: str | None = None
    service: str | None = None
    project: str | None = None

    @model_validator(mode="after")
    def _one_way(self):
        if not (self.name or self.label or self.service):
            raise ValueError("docker: give a container `name`, a `label` (key=value) or a compose `service`")
        return self


class ToxiproxyRef(Strict):
    """Which Toxiproxy server and proxy carry a TCP path."""

    api: Address = Field(description="host:port of the Toxiproxy API")
    proxy: str


class DigestAuth(Strict):
    """A user and password the hotline challenges for (RFC 3261 §22 digest), for one realm
    or, with no realm, for any. The password comes from `${NAME}` in the environment or from
    a file (`password_file`), never written in the inventory; it is masked in every output."""

    username: str = Field(min_length=1)
    password: str | None = Field(None, description="the password, as `${NAME}` from the "
                                 "environment (a literal works but is discouraged)")
    password_file: str | None = Field(None, description="a file whose first line is the password")
    realm: str | None = Field(None, description="the realm these credentials answer; none: any")
    _from_file: str = PrivateAttr("")

    @model_validator(mode="after")
    def _one_password(self):
        if (self.password is None) == (self.password_file is None):
            raise ValueError("auth: give exactly one of password (e.g. ${CARRIER_PASSWORD}) and "
                             "password_file")
        if self.password_file is not None:
            try:
                with open(self.password_file, encoding="utf-8") as fh:
                    secret = fh.readline().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"auth: cannot read password_file {self.password_file}: "
                                 f"{exc.strerror or exc}") from None
            if not secret:
                raise ValueError(f"auth: password_file {self.password_file} is empty")
            remember_secret(secret)
            self._from_file = secret  # never a field: a dump of the inventory leaves it out
        return self

    @property
    def secret(self) -> str:
        """The password, from the inventory (${NAME}) or from its file."""
        return self.password if self.password is not None else self._from_file


def _auth_list(value):
    return [value] if isinstance(value, dict) else value


AuthList = Annotated[list[DigestAuth], BeforeValidator(_auth_list)]


def yaml_word(v):
    """YAML 1.1 (PyYAML) reads a bare `off` as false and `on` as true: an option whose words
    include them takes the word back."""
    return ("on" if v else "off") if isinstance(v, bool) else v


SrtpMode = Annotated[Literal["off", "offer", "require"], BeforeValidator(yaml_word)]


class Node(Strict):
    """Something that can die: an SBC, a PBX, a media server, a database."""

    name: str
    role: str = "pbx"
    sip: Address | None = Field(None, description="ip:port where the node answers SIP OPTIONS")
    transports: list[Literal["udp", "tcp"]] = Field(
        default_factory=lambda: ["udp"], min_length=1,
        description="transports the node serves SIP on; the health check probes each")
    auth: AuthList = Field(default_factory=list, max_length=8,
                           description="digest credentials for the health check's OPTIONS "
                                       "(one mapping, or a list with one realm each)")
    process: ProcessRef | None = None
    docker: DockerRef | None = None
    netns: str | None = Field(None, description="network namespace the net injector acts in")
    site: str | None = Field(None, description="the data centre the node stands in; a fault on "
                             "a node of role `site` reaches every node of that site")


class TlsSpec(Strict):
    """How the harness checks a TLS entry point (transport: tls), as a carrier's trunk does."""

    ca_file: str | None = Field(None, description="PEM file of the CA(s) the SBC's certificate "
                                "must chain to; none: the system's CAs")
    verify: bool = Field(True, description="check the certificate and its name (turn off only "
                         "for a lab whose certificate you know is self-made)")
    server_name: str | None = Field(None, description="the name the certificate must carry, "
                                    "also sent as SNI; none: the address's host")
    cert_file: str | None = Field(None, description="our certificate (PEM), for mutual TLS")
    key_file: str | None = Field(None, description="its private key (PEM)")
    reuse: bool = Field(True, description="the calls share one long-lived connection, as a "
                        "carrier's trunk keeps it (a lost one is opened again and counted); "
                        "false: a connection per call")

    @model_validator(mode="after")
    def _files(self):
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"tls: {name} {path} is not a readable file")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: give cert_file and key_file together (mutual TLS), or neither")
        return self


class EntryPoint(Strict):
    """A carrier path into the hotline: where the load generator sends INVITEs."""

    name: str
    address: Address | None = Field(None, description="host:port of the SBC or VIP the "
                                    "carrier sends to (or give `domain`)")
    domain: Annotated[str, AfterValidator(_sip_domain)] | None = Field(
        None, description="a SIP domain the carrier locates by DNS (RFC 3263: NAPTR, SRV by "
        "priority and weight, A), re-resolved when the records' TTL runs out; the SRV targets "
        "are tried in order on the failover rules of `fallback` (instead of `address`)")
    resolver: Address | None = Field(None, description="with `domain`: host:port of the DNS "
                                     "server to ask (default: the system's resolver)")
    transport: str = Field("udp", pattern="^(udp|tcp|tls)$",
                           description="with `domain` and no transport given, NAPTR decides")
    tls: TlsSpec | None = Field(None, description="with transport: tls, how the SBC's "
                                "certificate is checked (default: the system's CAs, the host's name)")
    auth: AuthList = Field(default_factory=list, max_length=8,
                           description="digest credentials for calls through this entry point "
                                       "(one mapping, or a list with one realm each)")
    srtp: SrtpMode = Field("off", description="SRTP media with SDES keys (RFC 4568): off; "
                           "offer (RTP/AVP with a=crypto, SRTP when the answer takes a key); "
                           "require (RTP/SAVP: an answer without a key fails the call, cause srtp)")
    caller_ip: Host | None = Field(None, description="our address for SIP and RTP on this path, "
                                                    "when the hotline cannot reach the route's own")
    process: ProcessRef | None = None
    relay: Address | None = Field(None, description="ip:port of a udp relay's control channel")
    relay_token_file: str | None = Field(None, description="file with the token the relay's "
                                         "control channel asks for (when it asks for one)")
    toxiproxy: ToxiproxyRef | None = None
    netns: str | None = Field(None, description="network namespace the net injector acts in")
    outbound_proxy: bool = Field(False, description="send ACK, BYE and re-INVITEs to this entry "
                                 "point whatever Record-Route/Contact say (a trunk facing a B2BUA SBC)")
    fallback: list[Address] = Field(
        default_factory=list, max_length=8,
        description="further addresses of this path (another site's SBC or VIP), tried in order, "
                    "as a carrier's trunk fails over (RFC 3263 §4.3): when the address before "
                    "gives no response within failover_timer, cannot be reached, or answers 503")
    prompt_marker: str | None = Field(None, pattern=KEY,
                                      description="the RFC 4733 key this contact centre's IVR "
                                      "sends as its prompt (a journey's prompt step); none: any "
                                      "audio is the prompt")
    agent_marker: str | None = Field(None, pattern=r"^([0-9*#A-D]|answer|reinvite)$",
                                     description="the RFC 4733 key its test agents answer with "
                                     "(what a journey waits for); `reinvite`: the far end's "
                                     "re-INVITE or UPDATE (an agent's phone taking the media); "
                                     "`answer`: the SIP 200 itself, for a queue that rings until "
                                     "an agent picks up (the caller waits in the ringing and "
                                     "CANCELs when patience runs out)")
    agent_groups: dict[str, str] = Field(
        default_factory=dict, description="key -> group: the key its agents send right after "
        "the agent marker, naming who answered (a journey records it as answered_by)")
    callback_marker: str | None = Field(None, pattern=KEY,
                                        description="the key its IVR sends when it offers a "
                                        "callback instead of a wait (the caller takes it and "
                                        "hangs up)")
    announcement_marker: str | None = Field(None, pattern=KEY,
                                            description="the key its IVR sends with the failure "
                                            "announcement (the backup number; the caller hangs up)")
    markers_inband: bool = Field(False, description="its markers are also in-band DTMF tones "
                                 "in its G.711 µ-law audio: the caller reads tones (Goertzel) "
                                 "beside RFC 4733 events (some CPU per call)")
    answers_options: bool = Field(True, description="false for a far end that ignores SIP "
                                  "OPTIONS (some carriers, a SIPp UAS): the steady-state check "
                                  "then rests on its test call alone")
    media_check: bool = Field(True, description="the steady-state test call through this entry "
                              "point expects RTP back (any: echo, prompt, tone); false for a far "
                              "end that plays nothing until a person answers")
    failover_timer: Duration = Field(
        2.0, gt=0, le=32,
        description="seconds an INVITE waits for any response from one address before the next "
                    "is tried; Timer B's 32 s default would break 'switch within 30 s'")

    @model_validator(mode="after")
    def _address_or_domain(self):
        if (self.address is None) == (self.domain is None):
            raise ValueError(f"entry point {self.name}: give `address` (host:port) or `domain` "
                             "(located by DNS), one of the two")
        if self.resolver is not None and self.domain is None:
            raise ValueError(f"entry point {self.name}: `resolver` is for a `domain`")
        return self

    @property
    def addr(self) -> tuple[str, int]:
        if self.address is None:
            raise ValueError(f"entry point {self.name} is a domain ({self.domain}): its "
                             "addresses come from DNS, call by call")
        return split_address(self.address)

    @property
    def shown(self) -> str:
        """Where it is, for messages: its address, or its domain."""
        return self.address or f"{self.domain} by DNS"

    @property
    def located_by_dns(self) -> bool:
        return self.domain is not None

    @property
    def naptr_transport(self) -> str | None:
        """The transport the SRV records are looked up for; None: NAPTR decides (a domain
        whose entry gives no transport)."""
        return None if "transport" not in self.model_fields_set else self.transport

    @property
    def fallback_addrs(self) -> tuple[tuple[str, int], ...]:
        return tuple(split_address(a) for a in self.fallback)


class Link(Strict):
    """Something that can be cut or degraded: a carrier trunk, a replication link."""

    name: str
    kind: str = "carrier"
    process: ProcessRef | None = None
    docker: DockerRef | None = None
    relay: Address | None = Field(None, description="ip:port of a udp relay's control channel")
    relay_token_file: str | None = Field(None, description="file with the token the relay's "
                                         "control channel asks for (when it asks for one)")
    toxiproxy: ToxiproxyRef | None = None
    netns: str | None = Field(None, description="network namespace the net injector acts in")


# what a fault can act on: a node that dies, a link that is cut, a carrier entry point
InventoryEntry = Node | EntryPoint | Link


class RegistrarRef(Strict):
    """Where the hotline's agents' phones REGISTER."""

    address: Address
    domain: str = Field(min_length=1, description="the domain of the agents' addresses of record")
    auth: list[DigestAuth] = Field(default_factory=list, max_length=8)
    transport: str = Field("udp", pattern="^(udp|tcp|tls)$", description="how the phones reach "
                           "it: a UDP flow each, or a TCP or TLS connection each")
    tls: TlsSpec | None = Field(None, description="with transport: tls, how its certificate "
                                "is checked (default: the system's CAs, the host's name)")

    @property
    def addr(self) -> tuple[str, int]:
        return split_address(self.address)


class TargetInventory(Strict):
    name: str
    entry_points: list[EntryPoint]
    registrar: RegistrarRef | None = None
    nodes: list[Node] = []
    links: list[Link] = []
    allowlist: list[str] = Field(default_factory=list,
                                 description="names a drill may inject faults into")

    @model_validator(mode="after")
    def _unique(self):
        names = [x.name for x in [*self.entry_points, *self.nodes, *self.links]]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"names used twice: {', '.join(sorted(dup))}")
        return self

    def find(self, name: str) -> InventoryEntry | None:
        for x in [*self.nodes, *self.entry_points, *self.links]:
            if x.name == name:
                return x
        return None

    def nodes_hit(self, name: str) -> list[str]:
        """The nodes a fault on `name` takes out: a node itself, or, for a node of role
        `site`, every node of that site too; none for a link or an entry point."""
        target = self.find(name)
        if not isinstance(target, Node):
            return []
        if target.role == "site" and target.site:
            return [name, *(n.name for n in self.nodes if n.site == target.site and n.name != name)]
        return [name]

    def carriers(self, names: list[str] | None) -> list[EntryPoint]:
        """The entry points a load places calls through: those `load.carriers` names, or all."""
        return [e for e in self.entry_points if not names or e.name in names]

    def node_by_sip(self) -> dict[tuple[str, int], str]:
        return {split_address(n.sip): n.name for n in self.nodes if n.sip}


def handles(entry: InventoryEntry) -> set[tuple[str, str]]:
    """What a fault on `entry` acts on, as (kind, value) pairs: its process (pidfile, pid,
    unit), containers, relay, Toxiproxy proxy, SIP address and network namespace.

    Two entries that share one of these are the same thing to an injector: a name on
    the allowlist must not reach a node that is not (runner/plan.py checks it)."""
    out: set[tuple[str, str]] = set()
    p = getattr(entry, "process", None)
    if p is not None:
        if p.pidfile:
            out.add(("pidfile", os.path.realpath(p.pidfile)))
        if p.pid:
            out.add(("pid", str(p.pid)))
        if p.systemd_unit:
            out.add(("systemd unit", p.systemd_unit))
    d = getattr(entry, "docker", None)
    if d is not None:
        for kind in ("name", "label", "service"):
            if getattr(d, kind):
                out.add((f"container {kind}", f"{d.project or ''}/{getattr(d, kind)}"))
    if getattr(entry, "relay", None):
        out.add(("relay", entry.relay))
    t = getattr(entry, "toxiproxy", None)
    if t is not None:
        out.add(("toxiproxy proxy", f"{t.api}/{t.proxy}"))
    sip = getattr(entry, "sip", None) or getattr(entry, "address", None)
    if sip:
        out.add(("SIP address", sip))
    if getattr(entry, "netns", None):
        out.add(("network namespace", entry.netns))
    return out
