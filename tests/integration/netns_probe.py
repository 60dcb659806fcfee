"""Run inside a network namespace: a UDP echo on 127.0.0.1 and a probe against it; prints JSON.

Usage: python netns_probe.py PORT COUNT SIZE INTERVAL
"""
import json
import socket
import statistics
import sys
import threading
import time

port, count, size, interval = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind(("127.0.0.1", port))
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


threading.Thread(target=serve, daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(1.0)
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
for i in range(count):
    sent[i] = time.monotonic()
    try:
        s.sendto(i.to_bytes(4, "big") + b"x" * (size - 4), ("127.0.0.1", port))
    except PermissionError:  # dropped on the way out
        pass
    time.sleep(interval)
rx.join()
stop.set()
print(json.dumps({"sent": count, "received": len(rtt),
                  "rtt_median": statistics.median(rtt.values()) if rtt else None}))
