"""The packets behind a drill's figures: its capture read back (dpkt), each SIP message
indexed by its Call-ID, a call's ladder (who sent what to whom, when), a call's own pcap.

Read here: SIP over UDP (a message a datagram) and over TCP (a message whose start and
Call-ID are in one segment; a message split across segments is indexed by the segment that
holds its Call-ID). SIP over TLS is encrypted on the wire: its packets are in the capture
but no Call-ID can be read from them, and the index says how many such packets it skipped.
"""
from __future__ import annotations

import json
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dpkt

from harness.ops.capture import files

CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)
CSEQ = re.compile(rb"^CSeq[ \t]*:[ \t]*(\d+)[ \t]+(\S+)", re.I | re.M)
SDP_C = re.compile(rb"^c=IN IP4 (\S+)", re.M)
SDP_M = re.compile(rb"^m=\w+ (\d+) ", re.M)
INDEX = "index.json"


@dataclass
class SipPacket:
    file: str        # the ring file's name
    frame: int       # 1-based, as tshark and Wireshark number a file's frames
    ts: float
    src: str         # ip:port
    dst: str
    transport: str   # udp / tcp
    first_line: str  # "INVITE sip:…" or "SIP/2.0 200 OK"
    cseq: str        # "1 INVITE"
    call_id: str
    media: list[str] = field(default_factory=list)  # ip:port of each m= line of its SDP


def _ip_layer(linktype: int, buf: bytes):
    """The IPv4 packet in one captured frame (None for anything else)."""
    if linktype == dpkt.pcap.DLT_EN10MB:
        frame = dpkt.ethernet.Ethernet(buf)
    elif linktype == dpkt.pcap.DLT_LINUX_SLL:
        frame = dpkt.sll.SLL(buf)
    elif linktype == 276:  # LINUX_SLL2
        frame = dpkt.sll2.SLL2(buf)
    elif linktype in (dpkt.pcap.DLT_RAW, 101):
        return dpkt.ip.IP(buf)
    else:
        return None
    return frame.data if isinstance(frame.data, dpkt.ip.IP) else None


def _segments(path: Path):
    """(frame number, time, raw frame, IP packet, UDP or TCP segment) of each IPv4 UDP or TCP
    frame of one pcap file, frames numbered from 1 as tshark numbers them."""
    with open(path, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        link = reader.datalink()
        for n, (ts, buf) in enumerate(reader, start=1):
            try:
                ip = _ip_layer(link, buf)
            except (dpkt.UnpackError, IndexError):
                continue
            seg = ip.data if ip is not None else None
            if isinstance(seg, (dpkt.udp.UDP, dpkt.tcp.TCP)):
                yield n, ts, buf, ip, seg


def read_sip(path: Path) -> tuple[list[SipPacket], int]:
    """(the SIP messages in one pcap file, the packets none could be read from)."""
    out, unread = [], 0
    for n, ts, _, ip, seg in _segments(path):
        payload = bytes(seg.data)
        if not payload:
            continue  # a TCP acknowledgement, a keepalive
        call = CALL_ID.search(payload)
        if call is None:
            unread += 1
            continue
        cseq = CSEQ.search(payload)
        out.append(SipPacket(
            path.name, n, ts, f"{socket.inet_ntoa(ip.src)}:{seg.sport}",
            f"{socket.inet_ntoa(ip.dst)}:{seg.dport}",
            "udp" if isinstance(seg, dpkt.udp.UDP) else "tcp",
            payload.split(b"\r\n", 1)[0].decode(errors="replace")[:200],
            f"{cseq.group(1).decode()} {cseq.group(2).decode()}" if cseq else "",
            call.group(1).decode(errors="replace"), sdp_media(payload)))
    return out, unread


def sdp_media(payload: bytes) -> list[str]:
    """ip:port of each media stream the message's SDP offers or answers (session-level c=)."""
    head, sep, body = payload.partition(b"\r\n\r\n")
    if not sep or b"m=" not in body:
        return []
    conn = SDP_C.search(body)
    if conn is None:
        return []
    return [f"{conn.group(1).decode()}:{int(m.group(1))}" for m in SDP_M.finditer(body)
            if int(m.group(1))]


def build_index(folder: Path) -> dict:
    """Call-ID -> its SIP messages, over every file of the ring; written beside them."""
    calls: dict[str, list[dict]] = {}
    unread, ring = 0, files(folder)
    for f in ring:
        got, skipped = read_sip(f)
        unread += skipped
        for p in got:
            calls.setdefault(p.call_id, []).append(asdict(p))
    index = {"files": [f.name for f in ring], "unread": unread, "calls": calls}
    path = Path(folder) / INDEX
    path.write_text(json.dumps(index))
    path.chmod(0o600)  # as the capture itself: calls' numbers and addresses are in it
    return index


def load_index(folder: Path) -> dict | None:
    path = Path(folder) / INDEX
    if path.exists():
        return json.loads(path.read_text())
    return build_index(folder) if files(folder) else None


def ladder(index: dict, call_id: str, names: dict[str, str] | None = None) -> list[dict]:
    """A call's messages in time order, each with who sent it to whom (an address, or the
    name the inventory gives it)."""
    names = names or {}
    rows = sorted(index["calls"].get(call_id, []), key=lambda p: (p["ts"], p["frame"]))
    return [{**p, "from": names.get(p["src"], p["src"]), "to": names.get(p["dst"], p["dst"])}
            for p in rows]


def rtp_of(folder: Path, media: set[str], since: float, until: float):
    """(ts, frame) of the RTP ring's packets to or from the call's media addresses between
    `since` and `until` (a port is reused by a later call: the call's own time bounds it)."""
    for f in files(folder, "rtp"):
        for _, ts, buf, ip, seg in _segments(f):
            if since <= ts <= until and isinstance(seg, dpkt.udp.UDP) and {
                    f"{socket.inet_ntoa(ip.src)}:{seg.sport}",
                    f"{socket.inet_ntoa(ip.dst)}:{seg.dport}"} & media:
                yield ts, buf


def write_call_pcap(folder: Path, call_id: str, out: Path, rtp: bool = True) -> tuple[int, int]:
    """That call's packets, as captured, into one pcap file, in time order: its SIP and (where
    RTP was captured, and `rtp`) the RTP headers to or from the media addresses its SDP gave,
    while the call lasted; (SIP packets, RTP packets) written."""
    index = load_index(folder)
    sip = (index or {}).get("calls", {}).get(call_id, [])
    if not sip:
        return 0, 0
    wanted: dict[str, set[int]] = {}
    for p in sip:
        wanted.setdefault(p["file"], set()).add(p["frame"])
    packets, link = [], None
    for name in sorted(wanted):
        with open(Path(folder) / name, "rb") as fh:
            reader = dpkt.pcap.Reader(fh)
            link = reader.datalink()
            packets += [(ts, buf) for n, (ts, buf) in enumerate(reader, start=1)
                        if n in wanted[name]]
    media = {m for p in sip for m in p.get("media") or []}
    rtp_packets = list(rtp_of(folder, media, min(p["ts"] for p in sip),
                              max(p["ts"] for p in sip))) if rtp and media else []
    with open(out, "wb") as dst:
        # one link type for both rings: they are taken on the same interface
        writer = dpkt.pcap.Writer(dst, snaplen=65535, linktype=link, nano=False)
        for ts, buf in sorted(packets + rtp_packets, key=lambda x: x[0]):
            writer.writepkt(buf, ts)
    out.chmod(0o600)
    return len(packets), len(rtp_packets)


DROPPED_SAMPLE = DEAD_AIR_SAMPLE = 3


def bounding_calls(summary: dict, records) -> dict[str, list[str]]:
    """Call-ID -> why it is evidence: the calls that bound each fault's figures (the
    outage's edges, the first good call of the recovery, the last call the fault touched,
    the first call back), and a sample of dropped and dead-air calls."""
    from harness.metrics.voice import call_voice
    why: dict[str, list[str]] = {}

    def add(call_id, reason):
        if call_id:
            why.setdefault(call_id, []).append(reason)
    for f in summary.get("faults") or []:
        fid = f["fault_id"]
        outage, recovery = f.get("outage") or {}, f.get("recovery") or {}
        add(outage.get("last_answered"), f"{fid}: last call answered before the outage")
        add(outage.get("first_answered"), f"{fid}: first call answered after the outage")
        add(recovery.get("first_good"), f"{fid}: first good call of the recovery")
        add((f.get("shift") or {}).get("last_touched"), f"{fid}: last call the fault touched")
        add((f.get("calls_back") or {}).get("call_id"), f"{fid}: first call back")
    ordered = sorted(records, key=lambda r: r.started_at)
    for r in [r for r in ordered if r.outcome == "dropped"][:DROPPED_SAMPLE]:
        add(r.call_id, "dropped")
    dead = [r for r in ordered if (v := call_voice(r)) is not None and v.dead_air]
    for r in dead[:DEAD_AIR_SAMPLE]:
        add(r.call_id, "dead air")
    return why


def endpoint_names(inventory: dict) -> dict[str, str]:
    """ip:port -> the inventory's name for it (entry points, their fallbacks, nodes)."""
    names = {}
    for e in inventory.get("entry_points") or []:
        for a in [e.get("address"), *(e.get("fallback") or [])]:
            if a:
                names[a] = e["name"]
    for n in inventory.get("nodes") or []:
        if n.get("sip"):
            names[n["sip"]] = n["name"]
    return names


def evidence(run_dir: Path, summary: dict, records) -> dict | None:
    """What report.html shows of the capture: each bounding call's ladder, and the command
    that writes its packets; None when the drill captured nothing."""
    folder = Path(run_dir) / "capture"
    index = load_index(folder) if folder.is_dir() else None
    if index is None:
        return None
    target = Path(run_dir) / "target.json"
    names = endpoint_names(json.loads(target.read_text())) if target.exists() else {}
    calls = {}
    for call_id, reasons in bounding_calls(summary, records).items():
        calls[call_id] = {"why": reasons, "ladder": ladder(index, call_id, names),
                          "command": f"drill evidence {run_dir} {call_id}"}
    return {"folder": str(folder), "files": index["files"], "calls_indexed": len(index["calls"]),
            "unread": index["unread"], "calls": calls}
