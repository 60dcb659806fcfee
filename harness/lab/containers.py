"""The container lab: real Kamailio (dispatcher) as SBC, rtpengine as its media relay, SIPp PBX
nodes, three carrier relays.

Containers run on a Docker network of the project's own (default
172.30.99.0/24, fixed addresses so the dispatcher list survives restarts),
labelled `hotline-drill.lab`; `down` removes only containers with that label.
The carriers are on the host: carrier-a and carrier-b are UDP relays
(127.20.0.21-22, cut and degraded with udp.* faults); carrier-c is SIP over
TCP through a real Toxiproxy server (127.20.0.23, toxiproxy.* faults) when
`toxiproxy-server` is on PATH, else a third UDP relay. `up` writes the lab's target
inventory to the state folder, where `target: lab` finds it.

Media: Kamailio anchors every call's RTP at rtpengine (userspace forwarding,
172.30.99.3), and the UDP carrier relays carry the RTP of the calls that enter
through them, so a `udp.*` fault on carrier-a or carrier-b degrades exactly those
calls' audio. carrier-c over Toxiproxy carries signalling only (Toxiproxy has no
UDP): its calls' RTP goes from the caller to rtpengine directly.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.lab import rtpengine_ng
from harness.lab.sandbox import AUTH_USER, CARRIERS, CONTROL_PORT, RELAY_TOKEN, SBC_PASSWORD, \
    TLS_PORT
from harness.ops import SetupError
from harness.ops.docker_api import client, wait_healthy
from harness.ops.procs import proc_state, read_pid, start_process
from harness.lab.certs import CA, server_certificate
from harness.ops.state import private_token, state_home
from harness.ops.toxiproxy_api import client as toxiproxy_client
from harness.scenario.inventory import TargetInventory
from harness.scenario.load import read_inventory
from harness.sip.uac import HEALTH_CALL_PREFIX
from harness.scenario.yamlload import InputError
from harness.sip.probe import wait_until_answers

LABEL = "hotline-drill.lab"
FLAWS_LABEL = "hotline-drill.flaws"  # on the SBC container: the flaws its configuration has
CONFIG_LABEL = "hotline-drill.config"  # ... and a digest of the configuration it was started with
# Misconfigurations the lab can be brought up with (`drill lab up --docker --flaw NAME`), each a
# real one seen on staging hotlines, to rehearse what a drill must catch. Each is a
# preprocessor define in lab/kamailio/kamailio.cfg (FLAW_ + the name in capitals, - as _).
FLAWS = {
    "health-check-flaps": "Kamailio's keepalives count their own timeout (a 408 it makes "
                          "itself) as a reply: a dead PBX node is marked up again by the next "
                          "keepalive, so new calls keep being tried on it",
    "no-failover": "Kamailio has no failover: a call sent to a PBX node that does not answer "
                   "fails (408 to the caller) instead of being tried on the next node",
}
LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
IMAGES = ("hotline-drill/kamailio", "hotline-drill/pbx", "hotline-drill/rtpengine",
          "hotline-drill/postgres")
NG_PORT = 2223  # rtpengine's ng control port, on its lab address
AUTH_REALM = "lab"  # the realm Kamailio challenges for (auth); user and password file as the sandbox's
SBC_NAME = "sbc.lab"  # the name on Kamailio's certificate (tls), served on the sandbox's TLS_PORT
TLS_CFG = """\
# written by `drill lab up --docker --tls` (harness/lab/containers.py)
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = /etc/kamailio-lab/{cert}
private_key = /etc/kamailio-lab/{key}
"""


@dataclass
class LabConfig:
    subnet: str = field(default_factory=lambda: os.environ.get("HOTLINE_DRILL_LAB_SUBNET", "172.30.99"))
    carriers_block: str = "127.20.0"
    pbx_nodes: int = 2
    network: str = "hotline-drill-lab"
    flaws: tuple[str, ...] = ()  # names from FLAWS
    # Kamailio guards the trunk: every new INVITE is challenged (407, digest, realm "lab",
    # user "drill", a password made at `up`); the carriers' entry points are given it
    auth: bool = False
    # Kamailio also serves SIP over TLS on 5061 (its `tls` module, a certificate from a CA
    # made in the lab folder), and entry point carrier-tls goes there, checking it
    tls: bool = False
    # every entry point requires SRTP (SDES): rtpengine ends it towards the carriers and
    # gives the PBX nodes RTP, as an SBC's media relay does (kamailio.cfg)
    srtp: bool = False

    @property
    def folder(self) -> Path:
        return state_home() / "lab"

    def ip(self, last: int) -> str:
        return f"{self.subnet}.{last}"


def ensure_images() -> None:
    """Build the lab images from the local base image when they are missing."""
    c = client()
    missing = [i for i in IMAGES if not c.images.list(name=i)]
    if missing:
        for script in ("base-image.sh", "build-images.sh"):
            res = subprocess.run(["bash", str(LAB_DIR / script)], capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"lab/{script} failed: {res.stderr[-800:]}")


def _network(cfg: LabConfig):
    return bridge_network(cfg.network, cfg.subnet, LABEL)


def bridge_network(name: str, subnet: str, label: str):
    """A Docker bridge network of the project's own (`subnet` as "a.b.c", a /24, the host .1)."""
    c = client()
    nets = c.networks.list(names=[name])
    if nets:
        return nets[0]
    import docker
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=f"{subnet}.0/24", gateway=f"{subnet}.1")])
    return c.networks.create(name, driver="bridge", ipam=ipam, labels={label: "1"})


def _run(cfg: LabConfig, name: str, image: str, ip: str, volumes: dict):
    """Create and start a container on the lab network only, at a fixed address."""
    return run_container(name, image, {cfg.network: ip}, volumes, labels={LABEL: "1"})


def run_container(name: str, image: str, networks: dict[str, str], volumes: dict, *,
                  labels: dict[str, str], env: dict[str, str] | None = None,
                  sysctls: dict[str, str] | None = None, cap_add: list[str] | None = None,
                  command: list[str] | None = None, healthcheck: list[str] | None = None) -> str:
    """Create and start a container on the project's own networks only, at fixed addresses
    ({network: ip}, the first one given at creation, the others joined before the start)."""
    c = client()
    for old in c.containers.list(all=True, filters={"name": f"^/{name}$"}):
        old.remove(force=True)
    api = c.api
    binds = [f"{host}:{v['bind']}:{v.get('mode', 'rw')}" for host, v in volumes.items()]
    (first, first_ip), *more = networks.items()
    health = None if healthcheck is None else {
        "test": healthcheck, "interval": 1_000_000_000, "timeout": 2_000_000_000, "retries": 2}
    created = api.create_container(
        image, command=command, name=name, hostname=name, labels=labels, detach=True,
        environment=env, healthcheck=health,
        # supervised as production nodes are: a process that crashes is started again by the
        # engine; a drill's docker.kill/stop is a manual stop, which the policy leaves alone
        host_config=api.create_host_config(binds=binds, network_mode=first, sysctls=sysctls,
                                           cap_add=cap_add,
                                           restart_policy={"Name": "unless-stopped"}),
        networking_config=api.create_networking_config(
            {first: api.create_endpoint_config(ipv4_address=first_ip)}))
    for net, ip in more:
        api.connect_container_to_network(created["Id"], net, ipv4_address=ip)
    api.start(created["Id"])
    return created["Id"]


def inventory(cfg: LabConfig | None = None) -> dict:
    """The lab's target inventory as plain data (what `up` writes)."""
    cfg = cfg or LabConfig()
    d = cfg.folder
    nodes = [{"name": "sbc", "role": "sbc", "sip": f"{cfg.ip(2)}:5060", "transports": ["udp", "tcp"],
              "docker": {"name": "hd-lab-sbc"}},
             {"name": "media", "role": "media", "docker": {"name": "hd-lab-media"}}]
    for i in range(1, cfg.pbx_nodes + 1):
        nodes.append({"name": f"pbx-{i}", "role": "pbx", "sip": f"{cfg.ip(10 + i)}:5060",
                      "docker": {"name": f"hd-lab-pbx-{i}"}})
    entries = []
    for i, name in enumerate(CARRIERS):
        addr = f"{cfg.carriers_block}.{21 + i}"
        if name == "carrier-c" and shutil.which("toxiproxy-server"):
            entries.append({
                "name": name, "address": f"{addr}:5060", "transport": "tcp", "caller_ip": cfg.ip(1),
                "toxiproxy": {"api": f"{cfg.carriers_block}.1:{CONTROL_PORT}", "proxy": name}})
            continue
        entries.append({
            "name": name, "address": f"{addr}:5060", "relay": f"{addr}:{CONTROL_PORT}",
            "relay_token_file": str(d / RELAY_TOKEN),
            "caller_ip": cfg.ip(1),  # the host on the lab network: containers reach it for BYE and RTP
            "process": {"pidfile": str(d / f"{name}.pid"), "log": str(d / f"{name}.log"),
                        "start": [sys.executable, "-m", "harness.lab.relay", "--name", name,
                                  "--listen", f"{addr}:5060", "--upstream", f"{cfg.ip(2)}:5060",
                                  "--control", f"{addr}:{CONTROL_PORT}",
                                  "--token-file", str(d / RELAY_TOKEN)]}})
    if cfg.tls:  # straight to Kamailio's TLS port, as a cloud carrier's trunk comes in
        entries.append({"name": "carrier-tls", "address": f"{cfg.ip(2)}:{TLS_PORT}",
                        "transport": "tls", "caller_ip": cfg.ip(1),
                        "tls": {"ca_file": str(d / "kamailio" / CA), "server_name": SBC_NAME}})
    if cfg.auth:
        for e in entries:
            e["auth"] = {"username": AUTH_USER, "password_file": str(d / SBC_PASSWORD),
                         "realm": AUTH_REALM}
    if cfg.srtp:
        for e in entries:
            e["srtp"] = "require"
    # rtpengine's side of the lab network: every call's RTP leaves through it, marked EF
    links = [{"name": "media-link", "kind": "media", "netns": "container:hd-lab-media"}]
    names = [n["name"] for n in nodes] + [e["name"] for e in entries] + ["media-link"]
    registrar = {"address": f"{cfg.ip(2)}:5060", "domain": "lab"}  # Kamailio's usrloc
    if cfg.auth:
        registrar["auth"] = [{"username": AUTH_USER, "password_file": str(d / SBC_PASSWORD),
                              "realm": AUTH_REALM}]
    return {"name": "lab", "entry_points": entries, "nodes": nodes, "allowlist": names,
            "registrar": registrar, "links": links}


def location_table() -> dict[str, list[str]]:
    """Kamailio's own location table (`kamcmd ul.dump`): address of record (its user part:
    usrloc keeps no domain here) -> its contacts."""
    res = subprocess.run(["docker", "exec", "hd-lab-sbc", "kamcmd", "ul.dump"],
                         capture_output=True, text=True, timeout=15)
    if res.returncode != 0:
        raise RuntimeError(f"kamcmd ul.dump failed: {res.stderr.strip()}")
    table: dict[str, list[str]] = {}
    aor = None
    for line in res.stdout.splitlines():
        words = line.split()
        if words[:1] == ["AoR:"]:
            aor = words[1]
            table[aor] = []
        elif words[:1] == ["Address:"] and aor is not None:
            table[aor].append(words[1])
    return table


def kamailio_cfg(cfg: LabConfig) -> str:
    """The SBC's configuration: lab/kamailio/kamailio.cfg with rtpengine's address, and a
    define for each flaw asked for."""
    unknown = sorted(set(cfg.flaws) - set(FLAWS))
    if unknown:
        raise SetupError(f"unknown lab flaw(s) {', '.join(unknown)}; known: {', '.join(FLAWS)}")
    first, rest = (LAB_DIR / "kamailio" / "kamailio.cfg").read_text().split("\n", 1)
    defines = "".join(f"#!define FLAW_{name.upper().replace('-', '_')}\n"
                      for name in sorted(cfg.flaws))
    if cfg.tls:
        defines += "#!define WITH_TLS\n"
    if cfg.auth:
        defines += "#!define WITH_AUTH\n"
        password = private_token(cfg.folder / SBC_PASSWORD).read_text().strip()
        rest = rest.replace("AUTH_PASSWORD", password).replace("AUTH_USER", AUTH_USER) \
            .replace("AUTH_REALM", AUTH_REALM)
    return f"{first}\n{defines}{rest}".replace("RTPENGINE_NG", f"{cfg.ip(3)}:{NG_PORT}")


def flaws_running() -> list[str]:
    """The flaws the running SBC was configured with (none when it is not running)."""
    boxes = client().containers.list(filters={"label": LABEL, "name": "^/hd-lab-sbc$"})
    return [f for f in (boxes[0].labels.get(FLAWS_LABEL, "") if boxes else "").split(",") if f]


def kamailio_log(since: float) -> list[tuple[float, str]]:
    """Kamailio's own log lines since `since` (epoch s), each with the engine's time stamp."""
    import datetime as dt
    res = subprocess.run(["docker", "logs", "--timestamps", "--since", f"{since:.3f}", "hd-lab-sbc"],
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"docker logs hd-lab-sbc failed: {res.stderr.strip()}")
    out = []
    for line in (res.stdout + res.stderr).splitlines():
        stamp, _, text = line.partition(" ")
        try:  # RFC 3339 with nanoseconds: keep microseconds for fromisoformat
            head, frac = stamp.rstrip("Z").split(".")
            at = dt.datetime.fromisoformat(f"{head}.{frac[:6]}+00:00").timestamp()
        except ValueError:
            continue
        out.append((at, text))
    return sorted(out)


def inventory_path(cfg: LabConfig | None = None) -> Path:
    return (cfg or LabConfig()).folder / "inventory.yaml"


def up(cfg: LabConfig | None = None) -> TargetInventory:
    """Bring the lab up (idempotent) and write its inventory; return it."""
    cfg = cfg or LabConfig()
    cfg.folder.mkdir(parents=True, exist_ok=True)
    private_token(cfg.folder / RELAY_TOKEN)  # the carrier relays' control channels ask for it
    ensure_images()
    _network(cfg)
    c = client()
    running = {x.name for x in c.containers.list(filters={"label": LABEL})}
    for i in range(1, cfg.pbx_nodes + 1):
        name = f"hd-lab-pbx-{i}"
        stats = cfg.folder / "stats" / name
        stats.mkdir(parents=True, exist_ok=True)
        if name not in running:
            _run(cfg, name, "hotline-drill/pbx", cfg.ip(10 + i), {str(stats): {"bind": "/stats"}})
        wait_healthy(c.containers.get(name).id)
    if "hd-lab-media" not in running:
        _run(cfg, "hd-lab-media", "hotline-drill/rtpengine", cfg.ip(3), {})
    wait_rtpengine(cfg)
    conf = cfg.folder / "kamailio"
    conf.mkdir(exist_ok=True)
    text = kamailio_cfg(cfg)
    dispatchers = "".join(f"1 sip:{cfg.ip(10 + i)}:5060\n" for i in range(1, cfg.pbx_nodes + 1))
    (conf / "kamailio.cfg").write_text(text)
    (conf / "dispatcher.list").write_text(dispatchers)
    if cfg.tls:  # run-kamailio.sh listens on TLS when tls.cfg is there
        _, cert, key = server_certificate(conf, SBC_NAME, cfg.ip(2))
        (conf / "tls.cfg").write_text(TLS_CFG.format(cert=cert.name, key=key.name))
    else:  # (WITH_TLS in the configuration's text: TLS on or off restarts Kamailio below)
        (conf / "tls.cfg").unlink(missing_ok=True)
    # Kamailio reads its configuration once: one that differs (a flaw, a newer file) is
    # started anew (run_container removes the old one)
    digest = hashlib.sha256((text + dispatchers).encode()).hexdigest()[:16]
    if "hd-lab-sbc" in running and c.containers.get("hd-lab-sbc").labels.get(CONFIG_LABEL) != digest:
        running.discard("hd-lab-sbc")
    if "hd-lab-sbc" not in running:
        run_container("hd-lab-sbc", "hotline-drill/kamailio", {cfg.network: cfg.ip(2)},
                      {str(conf): {"bind": "/etc/kamailio-lab", "mode": "ro"}},
                      labels={LABEL: "1", FLAWS_LABEL: ",".join(sorted(cfg.flaws)),
                              CONFIG_LABEL: digest})
    inv = inventory(cfg)
    for e in inv["entry_points"]:
        if "toxiproxy" in e:
            _toxiproxy_trunk(cfg, e)
            continue
        if "process" not in e:
            continue  # carrier-tls: Kamailio's own TLS port
        p = e["process"]
        pid = read_pid(p["pidfile"])
        if not (pid and proc_state(pid)):
            start_process(p["start"], p["pidfile"], None, p["log"])
    for part in [*[n for n in inv["nodes"] if n.get("sip")],
                 *[e for e in inv["entry_points"] if e.get("transport", "udp") == "udp"]]:
        addr = part.get("sip") or part["address"]
        host, _, port = addr.rpartition(":")
        if not wait_until_answers((host, int(port)), 30):
            raise RuntimeError(f"lab part {part['name']} does not answer SIP at {addr}")
    inventory_path(cfg).write_text(yaml.safe_dump(inv, sort_keys=False))
    return TargetInventory.model_validate(inv)


def _toxiproxy_trunk(cfg: LabConfig, entry: dict) -> None:
    """A Toxiproxy server for the TCP trunk (pid in the lab folder) and its proxy to Kamailio."""
    import time
    api = entry["toxiproxy"]["api"]
    host, _, port = api.rpartition(":")
    pidfile = str(cfg.folder / "toxiproxy.pid")
    pid = read_pid(pidfile)
    if not (pid and proc_state(pid)):
        start_process([shutil.which("toxiproxy-server"), "-host", host, "-port", port],
                      pidfile, None, str(cfg.folder / "toxiproxy.log"))
    deadline = time.time() + 10
    while not toxiproxy_client(api).running():
        if time.time() > deadline:
            raise RuntimeError(f"toxiproxy-server did not answer at {api}")
        time.sleep(0.1)
    server = toxiproxy_client(api)
    if server.get_proxy(entry["toxiproxy"]["proxy"]) is None:
        server.create(upstream=f"{cfg.ip(2)}:5060", name=entry["toxiproxy"]["proxy"],
                      listen=entry["address"])


def down(cfg: LabConfig | None = None) -> list[str]:
    """Stop the carrier relays (by pid) and remove the lab's containers and network."""
    cfg = cfg or LabConfig()
    gone = []
    pidfiles = [(e["name"], e["process"]["pidfile"]) for e in inventory(cfg)["entry_points"]
                if "process" in e] + [("toxiproxy", str(cfg.folder / "toxiproxy.pid"))]
    for name, pidfile in pidfiles:
        pid = read_pid(pidfile)
        if pid and proc_state(pid):
            os.kill(pid, 15)
            gone.append(name)
    c = client()
    for box in c.containers.list(all=True, filters={"label": LABEL}):
        box.remove(force=True)
        gone.append(box.name)
    for net in c.networks.list(names=[cfg.network]):
        net.remove()
    inventory_path(cfg).unlink(missing_ok=True)
    return gone


def status(cfg: LabConfig | None = None) -> dict[str, str]:
    cfg = cfg or LabConfig()
    out = {}
    try:
        c = client()
        for box in c.containers.list(all=True, filters={"label": LABEL}):
            out[box.name] = box.status
            if box.labels.get(FLAWS_LABEL):
                out[box.name] += f" (flaws: {box.labels[FLAWS_LABEL]})"
    except Exception as exc:  # no engine
        out["docker"] = f"unreachable: {exc}"
    for name, pidfile in [(e["name"], e["process"]["pidfile"]) for e in inventory(cfg)["entry_points"]
                          if "process" in e] + [("toxiproxy", str(cfg.folder / "toxiproxy.pid"))]:
        pid = read_pid(pidfile)
        out[name] = f"running (pid {pid})" if pid and proc_state(pid) else "down"
    return out


def wait_rtpengine(cfg: LabConfig, within: float = 30.0) -> None:
    """Until rtpengine answers an ng ping (Kamailio gives up on a relay that is not there)."""
    import time
    deadline = time.monotonic() + within
    while True:
        try:
            if rtpengine_ng.command((cfg.ip(3), NG_PORT), {"command": "ping"},
                                    timeout=0.5).get("result") == "pong":
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"rtpengine at {cfg.ip(3)}:{NG_PORT} does not answer an ng ping")
        time.sleep(0.2)


def rtpengine_managed(cfg: LabConfig | None = None) -> int:
    """rtpengine's own count of the calls it has relayed since it started."""
    cfg = cfg or LabConfig()
    reply = rtpengine_ng.command((cfg.ip(3), NG_PORT), {"command": "statistics"})
    return int(((reply.get("statistics") or {}).get("totalstatistics") or {})
               .get("managedsessions", 0))


def kamailio_answered_calls() -> dict[str, str]:
    """Kamailio's own record of the answered calls: Call-ID -> the PBX address whose 200 it
    relayed (its `answered` htable), the steady-state check's test calls left out."""
    res = subprocess.run(["docker", "exec", "hd-lab-sbc", "kamcmd", "htable.dump", "answered"],
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"kamcmd htable.dump failed: {res.stderr.strip()}")
    calls: dict[str, str] = {}
    name = ""
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("value:") and not name.startswith(HEALTH_CALL_PREFIX):
            # the steady-state check's own test calls are not the drill's
            calls[name] = line.split(":", 1)[1].strip()
    return calls


def kamailio_answered() -> dict[str, int]:
    """Kamailio's own count of answered calls per PBX address."""
    counts: dict[str, int] = {}
    for addr in kamailio_answered_calls().values():
        counts[addr] = counts.get(addr, 0) + 1
    return counts


def kamailio_reset() -> None:
    subprocess.run(["docker", "exec", "hd-lab-sbc", "kamcmd", "htable.flush", "answered"],
                   capture_output=True, text=True, timeout=30, check=True)


def sipp_successful(cfg: LabConfig | None = None) -> dict[str, int]:
    """Each PBX node's own count of successful calls (SIPp statistics, all its starts summed)."""
    import csv
    cfg = cfg or LabConfig()
    out = {}
    for i in range(1, cfg.pbx_nodes + 1):
        total = 0
        for f in sorted((cfg.folder / "stats" / f"hd-lab-pbx-{i}").glob("stat-*.csv")):
            rows = list(csv.reader(open(f), delimiter=";"))
            if len(rows) > 1:
                total += int(rows[-1][rows[0].index("SuccessfulCall(C)")])
        out[f"pbx-{i}"] = total
    return out


def truth_check(calls, inv: TargetInventory, leave_out: set[str] = frozenset()) -> list[str]:
    """Mismatches between the harness's answered calls per node and Kamailio's own count of
    the same drill's calls (`leave_out`: Call-IDs left out of Kamailio's count too).

    Only the Call-IDs the drill placed are this drill's: the harness records every attempt,
    answered or not, so a call it lost would still be one of them, while an entry for a
    Call-ID it never placed is an earlier drill's (a PBX retransmits its 200 for up to 32 s
    when an ACK is lost, and Kamailio counts it again after the counters were reset; CI saw
    Kamailio one ahead on pbx-2 this way)."""
    placed = {c.call_id for c in calls}
    kam: dict[str, int] = {}
    for cid, addr in kamailio_answered_calls().items():
        if cid in placed and cid not in leave_out:
            kam[addr] = kam.get(addr, 0) + 1
    by_addr = {n.sip: n.name for n in inv.nodes if n.sip}
    theirs = {by_addr.get(addr, addr): n for addr, n in kam.items()}
    ours: dict[str, int] = {}
    for c in calls:
        if c.answered:
            ours[c.node] = ours.get(c.node, 0) + 1
    return [f"{node}: harness counted {ours.get(node, 0)} answered, Kamailio {theirs.get(node, 0)}"
            for node in sorted(set(ours) | set(theirs)) if ours.get(node, 0) != theirs.get(node, 0)]


class LabTarget:
    """A container lab as a target (`target: lab`, `target: lab-dr`): the lab that its `drill
    lab up` command brought up, its inventory written then; a drill uses it as it is and
    leaves it running (`drill lab down` stops it, never a drill)."""

    Options = None

    def __init__(self, name: str, what: str, path, up_command: str, defined):
        self.name, self.what, self.path, self.up_command = name, what, path, up_command
        self.defined = defined  # the inventory as `up` would write it, for plans made while down

    def inventory(self, options=None) -> TargetInventory:
        """The inventory `up` wrote; while the lab is down, the one it would write, so that a
        drill can be validated and dry-run with nothing started (`running` refuses to run it)."""
        path = self.path()
        if not path.exists():
            return TargetInventory.model_validate(self.defined())
        return read_inventory(path)

    def describe(self, options=None) -> list[str]:
        if self.path().exists():
            return []
        return [f"{self.what} is not up: planned from its definition; "
                f"`{self.up_command}` before the run"]

    def running(self, options, log, stop=lambda: False):
        if not self.path().exists():
            raise SetupError(f"target '{self.name}': {self.what} is not up; nothing injected "
                             f"(hint: run `{self.up_command}` first)")
        return nullcontext()

    def recover(self) -> list[str]:
        return []  # a drill never starts the lab: its `drill lab down` stops it


TARGET = LabTarget("lab", "the container lab", inventory_path, "drill lab up --docker", inventory)
