"""The two-site container lab (`drill lab up --docker --sites 2`): a hotline in two data
centres, every part a real component from Debian's packages.

    WAN  172.30.100.0/24  the stretched segment both sites and the carriers reach:
                          VIP .10 (keepalived, VRRP), sbc-a .11, sbc-b .12, db-a .21, db-b .22
    site A 172.30.101.0/24  sbc-a .2, pbx-a1 .11, pbx-a2 .12; sbc-b joins as .3;
                            internal VIP .10 (held by sbc-a, taken over by sbc-b)
    site B 172.30.102.0/24  sbc-b .2, pbx-b1 .11, pbx-b2 .12; sbc-a joins as .3;
                            internal VIP .10 (held by sbc-b, taken over by sbc-a)

- Each site's SBC is Kamailio (dispatcher over its own site's PBX nodes, Record-Route on
  the VIP, dialog state shared with the other SBC by DMQ, acc writing a CDR per answered
  call) beside keepalived, which holds the VIP on site A's SBC (priority 150) and moves it
  to site B's (100) when A's adverts stop: advert_int × 3 plus skew.
- PostgreSQL 15: the primary at site A, a streaming hot standby at site B (asynchronous,
  or `sync=True`: remote_apply). keepalived's notify script promotes the standby when site
  B takes the VIP and A's database does not answer: the hotline's own DR automation, which
  a drill measures and never performs. Kamailio's acc and the data probe connect with a
  libpq string naming both databases and asking for the read-write one.
- The PBX nodes are the one-site lab's SIPp UAS image; media goes from the caller to the
  PBX that answered (no media relay in this lab: the drill is about sites, not voice).
- Carriers: `carrier-a` sends to the VIP; `carrier-b` to site A's SBC, then site B's after
  a silent second (entry-point fallback, RFC 3263 §4.3).

Every container carries the labels `hotline-drill.lab-dr` and `hotline-drill.site=a|b`, so
a site is one `docker:` label selector in the inventory (nodes `site-a`, `site-b`).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.lab.containers import (LAB_DIR, LabTarget, bridge_network, ensure_images,
                                    run_container)
from harness.lab.dns_server import dns_parts, listens_at, wait_answering
from harness.ops.docker_api import client, wait_healthy
from harness.ops.procs import proc_state, read_pid, start_process
from harness.ops.state import private_token, state_home
from harness.scenario.inventory import TargetInventory
from harness.sip.probe import wait_until_answers

LABEL = "hotline-drill.lab-dr"
SITE_LABEL = "hotline-drill.site"
SYNC_LABEL = "hotline-drill.sync-replication"
SITES = ("a", "b")
VIP_LAST, DB_PORT = 10, 5432
DOMAIN, DNS_PORT = "hotline.lab", 1053  # the carriers' DNS (dnsmasq; its relay one port up)
DNS_TTL = 10  # s: short, so a DNS outage longer than it shows within one drill
RELAY_TOKEN = "relay.token"


@dataclass
class DrLabConfig:
    wan: str = field(default_factory=lambda: os.environ.get("HOTLINE_DRILL_DR_WAN", "172.30.100"))
    site_subnets: dict[str, str] = field(default_factory=lambda: {
        "a": os.environ.get("HOTLINE_DRILL_DR_SITE_A", "172.30.101"),
        "b": os.environ.get("HOTLINE_DRILL_DR_SITE_B", "172.30.102")})
    advert: int = 1          # keepalived advert_int, seconds: the VIP moves after 3 of them
    sync: bool = False       # synchronous replication (remote_apply) instead of asynchronous
    pbx_per_site: int = 2

    @property
    def folder(self) -> Path:
        return state_home() / "lab-dr"

    @property
    def vip(self) -> str:
        return f"{self.wan}.{VIP_LAST}"

    def site_vip(self, site: str) -> str:
        """A site's internal VIP: where its PBX nodes see the SBC (either site's SBC)."""
        return f"{self.site_subnets[site]}.{VIP_LAST}"

    def sbc_ip(self, sbc_site: str, network_site: str) -> str:
        """The address an SBC has on a site network: .2 on its own, .3 on the other."""
        return f"{self.site_subnets[network_site]}.{2 if sbc_site == network_site else 3}"

    def wan_ip(self, role: str, site: str) -> str:
        return f"{self.wan}.{(11 if role == 'sbc' else 21) + SITES.index(site)}"

    def network(self, site: str | None = None) -> str:
        return f"hotline-drill-dr-{site}" if site else "hotline-drill-dr-wan"

    def db_dsn(self, *sites: str, read_write: bool = False) -> str:
        """A libpq connection string for the databases of `sites`, in that order."""
        hosts = ",".join(self.wan_ip("db", s) for s in sites)
        rw = " target_session_attrs=read-write" if read_write else ""
        return f"host={hosts} port={DB_PORT} dbname=postgres user=postgres connect_timeout=1{rw}"


def other(site: str) -> str:
    return SITES[1 - SITES.index(site)]


def sbc_name(site: str) -> str:
    return f"hd-dr-sbc-{site}"


def inventory(cfg: DrLabConfig | None = None) -> dict:
    """The two-site lab's target inventory as plain data (what `up` writes)."""
    cfg = cfg or DrLabConfig()
    nodes = []
    for site in SITES:
        net = cfg.site_subnets[site]
        nodes.append({"name": f"site-{site}", "role": "site", "site": site,
                      "docker": {"label": f"{SITE_LABEL}={site}"}})
        nodes.append({"name": f"sbc-{site}", "role": "sbc", "site": site,
                      "sip": f"{cfg.wan_ip('sbc', site)}:5060", "docker": {"name": sbc_name(site)}})
        for i in range(1, cfg.pbx_per_site + 1):
            nodes.append({"name": f"pbx-{site}{i}", "role": "pbx", "site": site,
                          "sip": f"{net}.{10 + i}:5060", "docker": {"name": f"hd-dr-pbx-{site}{i}"}})
        nodes.append({"name": f"db-{site}", "role": "db", "site": site,
                      "docker": {"name": f"hd-dr-db-{site}"}})
    caller = f"{cfg.wan}.1"  # the host on the WAN segment: the PBXs reach it for RTP
    entries = [{"name": "carrier-a", "address": f"{cfg.vip}:5060", "caller_ip": caller},
               {"name": "carrier-b", "address": f"{cfg.wan_ip('sbc', 'a')}:5060",
                "fallback": [f"{cfg.wan_ip('sbc', 'b')}:5060"], "failover_timer": 1.0,
                "caller_ip": caller}]
    # the WAL stream, cut inside the standby's own network namespace (net.cut, peer db-a)
    links = [{"name": "replication", "kind": "replication", "netns": "container:hd-dr-db-b"}]
    # the carriers' DNS: SRV site A's SBC at priority 10, site B's at 20 (their own WAN
    # addresses, not the VIP); dnsmasq and its DNS relay on the host's WAN address
    dns = dns_parts(cfg.folder, domain=DOMAIN, server=f"{caller}:{DNS_PORT}",
                    path=f"{caller}:{DNS_PORT + 1}", token=str(cfg.folder / RELAY_TOKEN), ttl=DNS_TTL,
                    sbcs=[(f"sbc-{s}", cfg.wan_ip("sbc", s), 5060, 10 * (i + 1))
                          for i, s in enumerate(SITES)],
                    entry={"caller_ip": caller, "failover_timer": 1.0})
    nodes.append(dns["node"])
    links.append(dns["link"])
    entries.append(dns["entry_point"])
    names = [x["name"] for x in [*nodes, *entries, *links]]
    return {"name": "lab-dr", "entry_points": entries, "nodes": nodes, "links": links,
            "allowlist": names}


def inventory_path(cfg: DrLabConfig | None = None) -> Path:
    return (cfg or DrLabConfig()).folder / "inventory.yaml"


def _labels(site: str) -> dict[str, str]:
    return {LABEL: "1", SITE_LABEL: site}


def _start_databases(cfg: DrLabConfig, running: set[str]) -> None:
    for site in SITES:
        name = f"hd-dr-db-{site}"
        if name in running:
            continue
        env = {"DB_ROLE": "primary" if site == "a" else "standby",
               "DB_PEER": cfg.wan_ip("db", other(site)), "DB_SYNC": "1" if cfg.sync else "0"}
        run_container(name, "hotline-drill/postgres", {cfg.network(): cfg.wan_ip("db", site)}, {},
                      labels={**_labels(site), SYNC_LABEL: env["DB_SYNC"]}, env=env)
        wait_healthy(name)


def roles(cfg: DrLabConfig | None = None) -> dict[str, str | None]:
    """Which database is primary now: {"a": "primary"|"standby"|None, "b": ...} (None: down)."""
    import psycopg
    cfg = cfg or DrLabConfig()
    out: dict[str, str | None] = {}
    for site in SITES:
        try:
            with psycopg.connect(cfg.db_dsn(site), autocommit=True) as conn:
                standby = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            out[site] = "standby" if standby else "primary"
        except psycopg.Error:
            out[site] = None
    return out


def _cdr_table(cfg: DrLabConfig) -> None:
    """Kamailio acc's table (its default columns) on the primary, and on the standby by
    replication before the SBCs start."""
    import psycopg
    with psycopg.connect(cfg.db_dsn("a"), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS acc (id serial PRIMARY KEY, method varchar(16) NOT NULL "
            "DEFAULT '', from_tag varchar(128) NOT NULL DEFAULT '', to_tag varchar(128) NOT NULL "
            "DEFAULT '', callid varchar(255) NOT NULL DEFAULT '', sip_code varchar(3) NOT NULL "
            "DEFAULT '', sip_reason varchar(128) NOT NULL DEFAULT '', time timestamp NOT NULL)")

    def replayed() -> bool:
        try:
            with psycopg.connect(cfg.db_dsn("b"), autocommit=True) as conn:
                return bool(conn.execute("SELECT 1 FROM pg_tables WHERE tablename = 'acc'")
                            .fetchone())
        except psycopg.Error:
            return False
    _wait("the standby at site B did not replay the acc table", replayed, 20)


def _sbc_config(cfg: DrLabConfig, site: str) -> Path:
    conf = cfg.folder / f"kamailio-{site}"
    conf.mkdir(parents=True, exist_ok=True)
    # libpq expands a dbname that is a connection string (Kamailio passes expand_dbname=1),
    # which is how acc gets both databases and the read-write wish
    db_url = f"postgres://postgres@{cfg.wan_ip('db', 'a')}:{DB_PORT}/" + \
        cfg.db_dsn("a", "b", read_write=True).replace("connect_timeout=1", "connect_timeout=2")
    text = (LAB_DIR / "kamailio" / "kamailio-dr.cfg").read_text()
    subs = {"WAN_SELF": cfg.wan_ip("sbc", site), "WAN_PEER": cfg.wan_ip("sbc", other(site)),
            "VIP_ADDR": cfg.vip, "DB_URL_VALUE": db_url}
    for s in SITES:
        subs[f"SITE_{s.upper()}_REGEX"] = cfg.site_subnets[s].replace(".", "[.]") + "[.]"
        subs[f"SITE_{s.upper()}_VIP"] = cfg.site_vip(s)
    for key, value in subs.items():
        text = text.replace(key, value)
    (conf / "kamailio.cfg").write_text(text)
    net = cfg.site_subnets[site]
    (conf / "dispatcher.list").write_text("".join(
        f"1 sip:{net}.{10 + i}:5060\n" for i in range(1, cfg.pbx_per_site + 1)))
    return conf


def _start_sbc(cfg: DrLabConfig, site: str) -> None:
    peer = other(site)
    networks = {cfg.network(): cfg.wan_ip("sbc", site),
                cfg.network(site): cfg.sbc_ip(site, site), cfg.network(peer): cfg.sbc_ip(site, peer)}
    site_vips = " ".join(f"{s}:{cfg.site_vip(s)}:{cfg.sbc_ip(other(site), s)}:{cfg.sbc_ip(site, s)}"
                         for s in SITES)
    env = {"SITE": site, "VIP": cfg.vip, "WAN_IP": cfg.wan_ip("sbc", site),
           "PEER_WAN": cfg.wan_ip("sbc", peer), "PRIORITY": "150" if site == "a" else "100",
           "ADVERT": str(cfg.advert), "LOCAL_DB": cfg.wan_ip("db", site),
           "PEER_DB": cfg.wan_ip("db", peer), "SITE_VIPS": site_vips,
           "OWN_SITE_VIP": cfg.site_vip(site)}
    run_container(sbc_name(site), "hotline-drill/kamailio", networks,
                  {str(_sbc_config(cfg, site)): {"bind": "/etc/kamailio-lab", "mode": "ro"}},
                  labels=_labels(site), env=env, cap_add=["NET_ADMIN"],
                  sysctls={"net.ipv4.ip_nonlocal_bind": "1"},  # Kamailio binds the VIP it may get
                  command=["/usr/local/bin/run-dr-sbc.sh"],
                  healthcheck=["CMD", "/usr/local/bin/dr-sbc-health.sh"])


def vip_holder(cfg: DrLabConfig | None = None, vip: str | None = None) -> str | None:
    """Which site's SBC holds the virtual IP (the WAN one unless `vip` says) now, by its
    interfaces, or None."""
    cfg = cfg or DrLabConfig()
    vip = vip or cfg.vip
    c = client()
    for site in SITES:
        try:
            box = c.containers.get(sbc_name(site))
            if box.status != "running":
                continue
            res = box.exec_run(["ip", "-o", "-4", "addr", "show"])
        except Exception:
            continue
        if f" {vip}/" in res.output.decode():
            return site
    return None


def transitions(site: str) -> list[tuple[float, str]]:
    """keepalived's notify log of one SBC: (time, what) lines (master, backup, promotion)."""
    box = client().containers.get(sbc_name(site))
    res = box.exec_run(["cat", "/var/log/hotline-drill/vrrp-transitions.log"])
    out = []
    for line in res.output.decode().splitlines():
        stamp, _, what = line.partition(" ")
        try:
            out.append((float(stamp), what))
        except ValueError:
            continue
    return out


def _wait(what: str, ok, within: float) -> None:
    deadline = time.monotonic() + within
    while not ok():
        if time.monotonic() > deadline:
            raise RuntimeError(f"two-site lab: {what} within {within:.0f} s")
        time.sleep(0.2)


def up(cfg: DrLabConfig | None = None) -> TargetInventory:
    """Bring the two-site lab up (idempotent; a database pair whose roles a drill swapped is
    made anew) and write its inventory; return it."""
    cfg = cfg or DrLabConfig()
    cfg.folder.mkdir(parents=True, exist_ok=True)
    ensure_images()
    for site in (None, *SITES):
        bridge_network(cfg.network(site), cfg.wan if site is None else cfg.site_subnets[site], LABEL)
    c = client()
    running = {x.name for x in c.containers.list(filters={"label": LABEL})}
    pair = [c.containers.get(n) for n in ("hd-dr-db-a", "hd-dr-db-b") if n in running]
    swapped = len(pair) == 2 and roles(cfg) != {"a": "primary", "b": "standby"}
    other_mode = any(box.labels.get(SYNC_LABEL) != ("1" if cfg.sync else "0") for box in pair)
    if len(pair) == 1 or swapped or other_mode:
        # a failover happened, half the pair is gone, or the other replication mode is asked
        # for: the pair is made anew, A primary again
        for site in SITES:
            for box in c.containers.list(all=True, filters={"name": f"^/hd-dr-db-{site}$"}):
                box.remove(force=True)
        running -= {"hd-dr-db-a", "hd-dr-db-b"}
    _start_databases(cfg, running)
    _cdr_table(cfg)
    for site in SITES:
        for i in range(1, cfg.pbx_per_site + 1):
            name = f"hd-dr-pbx-{site}{i}"
            stats = cfg.folder / "stats" / name
            stats.mkdir(parents=True, exist_ok=True)
            if name not in running:
                run_container(name, "hotline-drill/pbx",
                              {cfg.network(site): f"{cfg.site_subnets[site]}.{10 + i}"},
                              {str(stats): {"bind": "/stats"}}, labels=_labels(site))
            wait_healthy(name)
    sbcs = {sbc_name(site) for site in SITES}
    if sbcs <= running and not _vips_home(cfg):
        # a drill left the VIPs astray (keepalived of a site whose interface Docker renamed
        # stays in FAULT): the SBC pair is made anew, A holding the VIP again
        for name in sbcs:
            c.containers.get(name).remove(force=True)
        running -= sbcs
    for site in SITES:  # A first, so it holds the VIP before B's keepalived starts
        if sbc_name(site) not in running:
            _start_sbc(cfg, site)
        if site == "a":
            wait_healthy(sbc_name(site))
            _wait("site A's SBC did not take the VIP", lambda: vip_holder(cfg) == "a", 30)
    for site in SITES:  # each site's internal VIP on its own SBC (B preempts A's stand-in)
        _wait(f"site {site.upper()}'s SBC did not take its internal VIP",
              lambda: vip_holder(cfg, cfg.site_vip(site)) == site, 30)
    inv = inventory(cfg)
    private_token(cfg.folder / RELAY_TOKEN)  # the DNS relay's control channel asks for it
    _start_dns(inv)
    for addr in [n["sip"] for n in inv["nodes"] if n.get("sip")] + [f"{cfg.vip}:5060"]:
        host, _, port = addr.rpartition(":")
        if not wait_until_answers((host, int(port)), 30):
            raise RuntimeError(f"two-site lab: nothing answers SIP at {addr}")
    inventory_path(cfg).write_text(yaml.safe_dump(inv, sort_keys=False))
    return TargetInventory.model_validate(inv)


def _dns_processes(inv: dict) -> list[dict]:
    """The DNS server and the DNS path: the lab's two local processes (node dns, link
    dns-path)."""
    return [p for p in [*inv["nodes"], *inv["links"]] if p.get("process")]


def _start_dns(inv: dict) -> None:
    for part in _dns_processes(inv):
        p = part["process"]
        pid = read_pid(p["pidfile"])
        if not (pid and proc_state(pid)):
            start_process(p["start"], p["pidfile"], None, p["log"])
    for part in _dns_processes(inv):
        if not wait_answering(listens_at(TargetInventory.model_validate(inv).find(part["name"])),
                              DOMAIN, 10):
            raise RuntimeError(f"two-site lab: {part['name']} does not answer for {DOMAIN}")


def _stop_dns(inv: dict) -> list[str]:
    gone = []
    for part in _dns_processes(inv):
        pid = read_pid(part["process"]["pidfile"])
        if pid and proc_state(pid):
            os.kill(pid, signal.SIGTERM)
            gone.append(part["name"])
    return gone


def _vips_home(cfg: DrLabConfig) -> bool:
    """The WAN VIP on site A's SBC and each site's internal VIP on its own SBC."""
    return vip_holder(cfg) == "a" and all(vip_holder(cfg, cfg.site_vip(s)) == s for s in SITES)


def down(cfg: DrLabConfig | None = None) -> list[str]:
    """Remove the two-site lab's containers and networks (by label: only what `up` made)."""
    cfg = cfg or DrLabConfig()
    c = client()
    gone = _stop_dns(inventory(cfg))
    for box in c.containers.list(all=True, filters={"label": LABEL}):
        box.remove(force=True)
        gone.append(box.name)
    for site in (None, *SITES):
        for net in c.networks.list(names=[cfg.network(site)]):
            net.remove()
    inventory_path(cfg).unlink(missing_ok=True)
    return gone


def status(cfg: DrLabConfig | None = None) -> dict[str, str]:
    cfg = cfg or DrLabConfig()
    out: dict[str, str] = {}
    try:
        for box in client().containers.list(all=True, filters={"label": LABEL}):
            out[box.name] = box.status
    except Exception as exc:  # no engine
        return {"docker": f"unreachable: {exc}"}
    if out:
        out["vip"] = f"{cfg.vip} on site {vip_holder(cfg) or '-'}"
        now = roles(cfg)
        out["databases"] = ", ".join(f"{s}: {r or 'down'}" for s, r in now.items())
        if list(now.values()) == ["primary", "primary"]:
            out["databases"] += " (split brain: `drill lab up --docker --sites 2` makes the pair anew)"
    for part in _dns_processes(inventory(cfg)):
        pid = read_pid(part["process"]["pidfile"])
        out[part["name"]] = f"running (pid {pid})" if pid and proc_state(pid) else "down"
    return out


def acc_failures() -> set[str]:
    """Call-IDs whose CDR Kamailio's acc itself reported it could not write (both SBCs' logs:
    the failed INSERT is logged with its values): the CDRs no database ever committed."""
    import re
    out: set[str] = set()
    for site in SITES:
        logs = client().containers.get(sbc_name(site)).logs().decode(errors="replace")
        for values in re.findall(r"insert into acc \([^)]*\) values \(([^)]*)\)", logs):
            fields = re.findall(r"'([^']*)'", values)
            if len(fields) >= 4:
                out.add(fields[3])  # method, from_tag, to_tag, callid, ...
    return out


TARGET = LabTarget("lab-dr", "the two-site lab", inventory_path,
                   "drill lab up --docker --sites 2", inventory)
