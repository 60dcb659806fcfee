"""A drill's packets, captured while it runs: the SIP of its entry points and nodes (whole
messages) and, on request, the RTP beside them (headers only), each by Wireshark's `dumpcap`
into a bounded ring of pcap files in the run folder (owner-only), stopped with the drill or
by itself after its length.

Why dumpcap: the kernel filters (BPF), the ring buffer bounds the disk, the files are the
ones tshark and Wireshark open; a Python sniffer would do all three worse.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from pathlib import Path

from harness.ops import OpsError

RTP_SNAPLEN = 96  # bytes of each RTP packet kept: link, IP, UDP and RTP headers, no voice


def interface_for(host: str) -> str:
    """The interface the kernel sends to `host` by (`ip route get`)."""
    out = subprocess.run(["ip", "-o", "route", "get", host], capture_output=True, text=True,
                         timeout=5)
    parts = out.stdout.split()
    if out.returncode != 0 or "dev" not in parts:
        raise OpsError(f"no route to {host}: cannot tell where to capture its packets")
    return parts[parts.index("dev") + 1]


def sip_filter(endpoints: list[tuple[str, int]]) -> str:
    """BPF: packets to or from any of the SIP endpoints (host and port)."""
    return " or ".join(f"(host {h} and port {p})" for h, p in sorted(set(endpoints)))


def rtp_filter(endpoints: list[tuple[str, int]]) -> str:
    """BPF: UDP to or from the endpoints' hosts, their SIP ports left out."""
    hosts = " or ".join(f"host {h}" for h in sorted({h for h, _ in endpoints}))
    ports = " or ".join(f"port {p}" for p in sorted({p for _, p in endpoints}))
    return f"udp and ({hosts}) and not ({ports})"


class Capture:
    """One dumpcap per kind (sip, rtp), started in a session of its own."""

    def __init__(self, folder: Path, endpoints: list[tuple[str, int]], rtp: bool,
                 max_mb: int, seconds: float):
        for h, _ in endpoints:
            ipaddress.ip_address(h)  # an address, never a name: the filter is the kernel's
        self.folder, self.endpoints, self.rtp = Path(folder), endpoints, rtp
        self.max_mb, self.seconds = max_mb, seconds
        self.procs: dict[str, subprocess.Popen] = {}

    def interface(self) -> str:
        devs = {interface_for(h) for h, _ in self.endpoints}
        return devs.pop() if len(devs) == 1 else "any"  # `any`: one link type for all

    def start(self) -> None:
        dumpcap = shutil.which("dumpcap") or "/usr/bin/dumpcap"
        if not os.path.exists(dumpcap):
            raise OpsError("dumpcap is not installed (apt-get install tshark): a capture "
                           "needs it")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # owner-only: calls' numbers and addresses are in it
        dev = self.interface()
        kinds = [("sip", sip_filter(self.endpoints), 0)]
        if self.rtp:
            kinds.append(("rtp", rtp_filter(self.endpoints), RTP_SNAPLEN))
        for kind, bpf, snaplen in kinds:
            # a ring of 5 files sharing the bound; it stops by itself after the drill's length
            argv = [dumpcap, "-q", "-P", "-i", dev, "-f", bpf, "-w", str(self.folder / f"{kind}.pcap"),
                    "-b", f"filesize:{max(1, self.max_mb * 1024 // 5)}", "-b", "files:5",
                    "-a", f"duration:{int(self.seconds) + 1}"]
            if snaplen:
                argv[3:3] = ["-s", str(snaplen)]
            # a session of its own: a Ctrl-C to the drill is the drill's to handle
            self.procs[kind] = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE, start_new_session=True)
        self._wait_capturing()

    def _wait_capturing(self, within: float = 5.0) -> None:
        """Until each dumpcap has opened its first file (packets before it are not kept)."""
        deadline = time.time() + within
        while time.time() < deadline:
            if all(any(self.folder.glob(f"{k}_*.pcap")) for k in self.procs):
                return
            dead = {k: p.stderr.read().decode(errors="replace").strip()[-300:]
                    for k, p in self.procs.items() if p.poll() is not None}
            if dead:
                self.stop()
                raise OpsError("dumpcap stopped at once: " + "; ".join(
                    f"{k}: {why}" for k, why in dead.items()))
            time.sleep(0.05)
        raise OpsError(f"dumpcap wrote no file within {within:g}s")

    def stop(self) -> None:
        """SIGTERM (dumpcap then writes out what it holds), SIGKILL after 5 s."""
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            p.stderr.close()
        for f in self.folder.glob("*.pcap"):
            os.chmod(f, 0o600)


def files(folder: Path, kind: str = "sip") -> list[Path]:
    """A capture's ring files of one kind, oldest first (dumpcap numbers them)."""
    return sorted(Path(folder).glob(f"{kind}_*.pcap"))
