"""A practice hotline's DNS, as inventory parts: Debian's dnsmasq answering for the hotline's
domain (a node: `process.kill` takes it out), the DNS relay in front of it (a link: where
`dns.*` faults act) and the entry point that locates the SBCs through them (RFC 3263). The
sandbox and the two-site lab build theirs here; both start them as local processes.

The zone: NAPTR for SIP over UDP, one SRV record per SBC with the priority given (weight 0),
its A record, every TTL `ttl`; each query logged to `dns.queries.log` (the server's own
count).
"""
from __future__ import annotations

import getpass
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from harness.lab.dns_relay import dns_answers

CONTROL_PORT = 8474  # the relay's control channel, as the carrier relays'


def dnsmasq_argv(folder: Path, listen: str, domain: str, sbcs: list[tuple[str, str, int, int]],
                 ttl: int) -> list[str]:
    """dnsmasq for `domain` alone; `sbcs`: (name, address, port, SRV priority) each."""
    host, port = listen.rsplit(":", 1)
    return [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--no-daemon", "--port", port,
            "--listen-address", host, "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--pid-file=", f"--user={getpass.getuser()}", f"--local=/{domain}/",
            f"--local-ttl={ttl}", "--log-queries", f"--log-facility={folder / 'dns.queries.log'}",
            f"--naptr-record={domain},10,50,s,SIP+D2U,,_sip._udp.{domain}",
            *(f"--srv-host=_sip._udp.{domain},{name}.{domain},{p},{prio},0"
              for name, _, p, prio in sbcs),
            *(f"--host-record={name}.{domain},{ip}" for name, ip, _, _ in sbcs)]


def dns_parts(folder: Path, *, domain: str, server: str, path: str, token: str | None,
              sbcs: list[tuple[str, str, int, int]], ttl: int, entry: dict) -> dict:
    """The inventory's parts as plain data: {"node": ..., "link": ..., "entry_point": ...};
    `server` and `path` are host:port of dnsmasq and of the relay the carriers ask; `entry`
    more of the entry point's keys (its name, caller_ip, failover_timer...)."""
    host = path.rsplit(":", 1)[0]
    control = f"{host}:{CONTROL_PORT}"
    relay = [sys.executable, "-m", "harness.lab.dns_relay", "--listen", path, "--upstream",
             server, "--control", control, "--log", str(folder / "dns-path.rules.log")]
    if token:
        relay += ["--token-file", token]

    def proc(name: str, argv: list[str]) -> dict:
        return {"pidfile": str(folder / f"{name}.pid"), "start": argv,
                "log": str(folder / f"{name}.log")}
    return {"node": {"name": "dns", "role": "dns",
                     "process": proc("dns", dnsmasq_argv(folder, server, domain, sbcs, ttl))},
            "link": {"name": "dns-path", "kind": "dns", "relay": control,
                     **({"relay_token_file": token} if token else {}),
                     "process": proc("dns-path", relay)},
            "entry_point": {"name": "carrier-dns", "domain": domain, "resolver": path, **entry}}


def listens_at(part) -> tuple[str, int]:
    """Where a DNS part (the node or the link, as a model) answers queries, from its argv."""
    argv = part.process.start
    if "--listen-address" in argv:
        host, port = argv[argv.index("--listen-address") + 1], argv[argv.index("--port") + 1]
    else:
        host, _, port = argv[argv.index("--listen") + 1].rpartition(":")
    return host, int(port)


def wait_answering(at: tuple[str, int], domain: str, within: float,
                   stop: Callable[[], bool] = lambda: False) -> bool:
    """Until DNS at `at` answers for `domain` (False after `within` s or on `stop()`)."""
    deadline = time.time() + within
    while not dns_answers(at, domain):
        if stop() or time.time() > deadline:
            return False
        time.sleep(0.05)
    return True
