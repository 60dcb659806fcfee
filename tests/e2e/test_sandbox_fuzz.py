"""One packet never breaks the practice hotline: 20,000 malformed datagrams and 300 malformed
TCP streams at the sandbox's SBC, PBX nodes and carriers, then every part still answers
OPTIONS, a real call carries RTP both ways through a carrier, and no log holds a traceback.

Seeded, bounded in count (and so in time), sent only to the sandbox's own loopback block.
"""
import random
import socket
from pathlib import Path

from harness.lab import sandbox
from harness.runner.steady import steady_state
from harness.scenario.inventory import split_address
from harness.sip.uac import CallOptions, place_call
from tests.conftest import wait_for

DATAGRAMS, STREAMS = 20_000, 300

INVITE = ("INVITE sip:hotline@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{vport};branch=z9hG4bK{n}\r\n"
          "From: <sip:fuzz@127.0.0.1>;tag={n}\r\nTo: <sip:hotline@{host}>\r\nCall-ID: fuzz-{n}\r\n"
          "CSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:{vport}>\r\nMax-Forwards: 70\r\n"
          "Content-Type: application/sdp\r\nContent-Length: {clen}\r\n\r\n"
          "v=0\r\no=f 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {mip}\r\nt=0 0\r\n"
          "m=audio {mport} RTP/AVP 0\r\n")
OTHER = ["OPTIONS sip:x@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{vport};branch=z9hG4bK{n};rport={vport}\r\n"
         "Call-ID: o{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: {clen}\r\n\r\n",
         "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {host};branch=z9hG4bK{n}\r\nCall-ID: fuzz-{n}\r\n"
         "CSeq: 1 INVITE\r\nContent-Length: {clen}\r\n\r\n",
         "BYE sip:x@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{vport}\r\nCall-ID: fuzz-{n}\r\n"
         "CSeq: 2 BYE\r\n\r\n"]
PORTS = ["70000", "-1", "0", "abc", "99999999999999999999", "5060", "65535", "", "5060;rport=70000"]


def fuzzed(rng: random.Random, host: str, n: int) -> bytes:
    fields = {"host": host, "n": n, "vport": rng.choice(PORTS), "clen": rng.choice(["0", "-5", "99999", "x", "12"]),
              "mip": rng.choice(["127.0.0.1", "999.1.1.1", "::1", "host.name", ""]),
              "mport": rng.choice(["70000", "0", "-3", "abc", "4000"])}
    text = rng.choice([INVITE] + OTHER).format(**fields).encode()
    kind = rng.randrange(6)
    if kind == 0:  # bit flips
        data = bytearray(text)
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 1:  # cut anywhere
        return text[:rng.randrange(len(text))]
    if kind == 2:  # a header repeated hundreds of times
        return text.replace(b"\r\n\r\n", b"\r\n" + b"X-Fuzz: y\r\n" * rng.randrange(50, 500) + b"\r\n", 1)
    if kind == 3:  # random bytes
        return rng.randbytes(rng.randrange(1, 1500))
    return text  # well-formed but hostile values (ports, lengths, addresses)


def test_the_sandbox_survives_malformed_sip(sandbox_up):
    inv = sandbox_up
    rng = random.Random(20261126)
    targets = [split_address(n.sip) for n in inv.nodes] + \
        [split_address(e.address) for e in inv.entry_points]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(DATAGRAMS):
        host, port = targets[i % len(targets)]
        try:
            udp.sendto(fuzzed(rng, f"{host}:{port}", i), (host, port))
        except OSError:
            pass  # a full socket buffer: the datagram is lost, as on a real network
    udp.close()
    sbc = split_address(inv.find("sbc").sip)
    for i in range(STREAMS):  # SIP over TCP: partial, oversized, garbage
        with socket.create_connection(sbc, timeout=5) as s:
            s.sendall(fuzzed(rng, f"{sbc[0]}:{sbc[1]}", DATAGRAMS + i) * rng.randrange(1, 4))
            if rng.random() < 0.3:
                s.sendall(rng.randbytes(70_000))  # more than any message may be

    ok, problems = steady_state(inv, within=10.0)
    assert ok, problems  # every part still answers OPTIONS
    carrier = inv.find("carrier-a")
    # the SBC may have marked nodes down while the flood kept them busy, as a dispatcher does;
    # its own keepalives bring them back, with nobody restarting anything
    calls = []

    def a_call_completes() -> bool:
        calls.append(place_call(split_address(carrier.address), CallOptions(hold=1.0, rtp=True)))
        return calls[-1].outcome == "completed"

    wait_for(a_call_completes, 30, every=0.5, what="a call through carrier-a after the flood")
    rec = calls[-1]
    assert rec.rtp_received > 0.9 * rec.rtp_expected  # media still flows through the PBX
    for part in [*inv.nodes, *inv.entry_points]:
        log = Path(part.process.log).read_text()
        assert "Traceback" not in log, f"{part.name}: {log[-2000:]}"
        assert len(log.splitlines()) < 2000, f"{part.name} logged {len(log.splitlines())} lines"
    assert all(pid is not None for pid in sandbox.status().values())
