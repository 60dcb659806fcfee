"""Competing bulk traffic: UDP datagrams at a set rate to one address for a set time, as a
backup job or a flood fills a carrier link. It stops by itself after `--seconds`; its own
count (datagrams and bytes sent) goes to `--stats-file` every half second and at the end.

Why not iperf3: it needs a server at the far end, and the far end of a carrier link under
drill is the hotline's, where nothing of ours listens; datagrams to a port nobody reads are
carried by the link all the same (the kernel there drops them).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import time

SIZE = 1200  # bytes of payload per datagram: below any path's MTU
STEP = 0.001  # s between sends


def blast(to: tuple[str, int], rate_kbit: float, seconds: float, dscp: int = 0,
          stats_file: str | None = None, size: int = SIZE) -> dict:
    """Send at `rate_kbit` (payload) for `seconds`, paced in 1 ms steps (a smooth stream: a
    burst every 10 ms would find the queue full itself and spare the packets between); the
    counts sent."""
    sent = {"datagrams": 0, "bytes": 0, "rate_kbit": rate_kbit}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    per_step = rate_kbit * 1000 / 8 / size * STEP  # datagrams per step
    owed, payload = 0.0, b"\0" * size
    began = last_note = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if dscp:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
        step = began
        while not stop[0] and time.monotonic() - began < seconds:
            owed += per_step
            while owed >= 1:
                owed -= 1
                try:
                    s.sendto(payload, to)
                    sent["datagrams"] += 1
                    sent["bytes"] += size
                except OSError:  # a full queue or an ICMP refusal: the link is what it is
                    pass
            step += STEP
            time.sleep(max(0.0, step - time.monotonic()))
            if stats_file and time.monotonic() - last_note >= 0.5:
                _note(stats_file, sent)
                last_note = time.monotonic()
    if stats_file:
        _note(stats_file, sent)
    return sent


def _note(path: str, sent: dict) -> None:
    with open(path + ".tmp", "w") as fh:
        json.dump(sent, fh)
    os.replace(path + ".tmp", path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", required=True, help="ip:port the datagrams go to")
    ap.add_argument("--rate-kbit", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True, help="it stops by itself then")
    ap.add_argument("--dscp", type=int, default=0)
    ap.add_argument("--stats-file")
    ap.add_argument("--size", type=int, default=SIZE, help="payload bytes per datagram")
    a = ap.parse_args(argv)
    host, port = a.to.rsplit(":", 1)
    blast((host, int(port)), a.rate_kbit, a.seconds, a.dscp, a.stats_file, a.size)


if __name__ == "__main__":
    main()
