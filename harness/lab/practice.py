"""The three practice hotlines behind one protocol, for `drill lab up|status|down`.

The sandbox (local processes), the container lab (Kamailio, rtpengine, SIPp) and the
two-site DR lab each start from the options that concern them, show their parts, and
stop what the project started; an option meant for another lab is refused by name, so
the command line needs no if-chain over the three.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Protocol

from harness.scenario.yamlload import InputError

Say = Callable[[str], None]


@dataclass
class LabOptions:
    """`drill lab up`'s options; None (or empty) where the user gave none."""
    channels: int | None = None
    pbx_nodes: int | None = None
    health_check: bool | None = None
    dispatch: str | None = None
    sync_replication: bool | None = None
    advert: int | None = None
    flaws: list[str] = field(default_factory=list)
    auth: bool | None = None
    tls: bool | None = None
    srtp: str | None = None
    dns_ttl: int | None = None

    def given(self) -> set[str]:
        return {k for k, v in vars(self).items() if v not in (None, [], ())}


_FLAGS = {"channels": "--channels", "pbx_nodes": "--pbx-nodes",
          "health_check": "--health-check/--no-health-check", "dispatch": "--dispatch",
          "sync_replication": "--sync-replication", "advert": "--advert", "flaws": "--flaw",
          "auth": "--auth", "tls": "--tls", "srtp": "--srtp", "dns_ttl": "--dns-ttl"}


class PracticeLab(Protocol):
    name: str      # what scenarios say in `target:`
    what: str      # in words, for messages
    options: set[str]  # LabOptions fields it takes

    def up(self, opts: LabOptions, say: Say) -> None: ...

    def status(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """(column names, one row per part)."""

    def down(self) -> list[str]: ...


def refuse_others(lab: PracticeLab, opts: LabOptions) -> None:
    foreign = sorted(opts.given() - lab.options)
    if foreign:
        raise InputError([f"{', '.join(_FLAGS[k] for k in foreign)}: not an option of {lab.what}"
                          f" (drill lab up --help says which lab takes which)"])


class Sandbox:
    name, what = "sandbox", "the sandbox"
    options = {"channels", "pbx_nodes", "health_check", "dispatch", "auth", "tls", "srtp",
               "dns_ttl"}

    def up(self, opts: LabOptions, say: Say) -> None:
        from harness.lab import sandbox
        if opts.dispatch not in (None, "round-robin", "hash"):
            raise InputError([f"--dispatch {opts.dispatch!r}: use round-robin or hash"])
        if opts.srtp not in (None, "off", "on", "wrong-key"):
            raise InputError([f"--srtp {opts.srtp!r}: use on (the SBC ends SRTP towards the "
                              "carriers), wrong-key (it sends with the wrong key) or off"])
        cfg = sandbox.SandboxConfig(
            pbx_nodes=opts.pbx_nodes or 2,
            health_check=True if opts.health_check is None else opts.health_check,
            dispatch=opts.dispatch or "round-robin", auth=bool(opts.auth), tls=bool(opts.tls),
            srtp=opts.srtp or "off", dns=None if opts.dns_ttl is None else {"ttl": opts.dns_ttl})
        if opts.channels:
            cfg.channels = opts.channels
        sandbox.up(cfg)

    def status(self):
        from harness.lab import sandbox
        inv = sandbox.inventory(sandbox.SandboxConfig.saved())
        st = sandbox.status()
        def pid(name):  # carrier-tls and carrier-dns are ways in, not processes
            return str(st.get(name) or "[red]down[/red]") if name in st else "-"
        rows = [(n.name, n.role, n.sip or "-", pid(n.name)) for n in inv.nodes]
        rows += [(e.name, "carrier", e.shown, pid(e.name)) for e in inv.entry_points]
        rows += [(x.name, x.kind, x.relay or "-", pid(x.name)) for x in inv.links]
        return ("part", "role", "address", "pid"), rows

    def down(self) -> list[str]:
        from harness.lab import sandbox
        return sandbox.down()


class _DockerLab:
    """A lab of containers: its module (lab/containers.py, lab/dr_lab.py) shows and stops it."""
    module: str

    def _lab(self):
        return importlib.import_module(f"harness.lab.{self.module}")

    def status(self):
        return ("part", "state"), list(self._lab().status().items())

    def down(self) -> list[str]:
        return self._lab().down()

    def inventory_path(self):
        return self._lab().inventory_path()


class ContainerLab(_DockerLab):
    name, what, module = "lab", "the container lab", "containers"
    options = {"flaws", "auth", "tls", "srtp"}

    def up(self, opts: LabOptions, say: Say) -> None:
        containers = self._lab()
        unknown = sorted(set(opts.flaws) - set(containers.FLAWS))
        if unknown:
            raise InputError([f"--flaw {', '.join(unknown)}: not a lab flaw; known: "
                              + ", ".join(containers.FLAWS)])
        if opts.srtp not in (None, "on", "off"):
            raise InputError([f"--srtp {opts.srtp!r}: the container lab takes on or off "
                              "(rtpengine ends SRTP towards the carriers); wrong-key is the "
                              "sandbox's"])
        say("building images if needed and starting the container lab ...")
        containers.up(containers.LabConfig(flaws=tuple(opts.flaws), auth=bool(opts.auth),
                                           tls=bool(opts.tls), srtp=opts.srtp == "on"))
        for name in opts.flaws:
            say(f"[yellow]flaw {name}[/yellow]: {containers.FLAWS[name]}")
        if opts.auth:
            say(f"Kamailio challenges every new INVITE (digest, realm {containers.AUTH_REALM}, "
                f"user {containers.AUTH_USER}); the inventory's entry points carry the password "
                "file")
        if opts.tls:
            say(f"Kamailio serves SIP over TLS on {containers.TLS_PORT} (entry point carrier-tls, "
                f"certificate for {containers.SBC_NAME} from the lab's own CA)")


class DrLab(_DockerLab):
    name, what, module = "lab-dr", "the two-site lab", "dr_lab"
    options = {"sync_replication", "advert"}

    def up(self, opts: LabOptions, say: Say) -> None:
        dr_lab = self._lab()
        say("building images if needed and starting the two-site lab ...")
        dr_lab.up(dr_lab.DrLabConfig(sync=bool(opts.sync_replication), advert=opts.advert or 1))


def pick(docker: bool, sites: int) -> PracticeLab:
    """The lab `--docker` and `--sites` name."""
    if sites == 2 and not docker:
        raise InputError(["--sites 2 is a container lab: add --docker"])
    return DrLab() if sites == 2 else ContainerLab() if docker else Sandbox()
