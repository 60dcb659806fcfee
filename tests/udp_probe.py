"""UDP echo and probe for measuring impairments from outside; also runs as a script in a netns.

As a script: `python udp_probe.py PORT COUNT SIZE INTERVAL` starts an echo on
127.0.0.1:PORT, probes it and prints JSON {sent, received, rtt_median}.
"""
import json
import socket
import statistics
import sys
import threading
import time


def echo_server(host: str = "127.0.0.1", port: int = 0) -> tuple[int, threading.Event]:
    """A UDP echo in a thread; returns (port, stop event)."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind((host, port))
    echo.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = echo.recvfrom(4096)
            except socket.timeout:
                continue
            try:
                echo.sendto(data, addr)
            except PermissionError:  # iptables DROP in OUTPUT: the reply is lost
                pass
        echo.close()

    threading.Thread(target=serve, daemon=True).start()
    return echo.getsockname()[1], stop


def probe(addr, n, interval=0.002, size=64, wait=1.0) -> dict:
    """Send n numbered datagrams; return {seq: round-trip time} of those that came back.

    A thread receives while the main thread sends, so no socket buffer overflows
    and every loss counted is the path's.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(wait)
    sent, rtt = {}, {}

    def receive():
        while True:
            try:
                data = s.recv(4096)
            except socket.timeout:
                return
            seq = int.from_bytes(data[:4], "big")
            rtt.setdefault(seq, time.monotonic() - sent[seq])

    rx = threading.Thread(target=receive)
    rx.start()
    for i in range(n):
        sent[i] = time.monotonic()
        try:
            s.sendto(i.to_bytes(4, "big") + b"x" * (size - 4), addr)
        except PermissionError:  # dropped on the way out
            pass
        time.sleep(interval)  # pacing the probe traffic, not synchronisation
    rx.join()
    s.close()
    return rtt


if __name__ == "__main__":
    port, count, size, interval = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    _, stop = echo_server("127.0.0.1", port)
    rtts = probe(("127.0.0.1", port), count, interval, size)
    stop.set()
    print(json.dumps({"sent": count, "received": len(rtts),
                      "rtt_median": statistics.median(rtts.values()) if rtts else None}))
