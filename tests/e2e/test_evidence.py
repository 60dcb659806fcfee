"""A drill's packets (scenario `capture:`), checked against tshark's own decode of the same
capture: the Call-ID index, the pcap `drill evidence` writes for one call, and the ladders
report.html shows for the calls that bound the outage."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_scenario

HERE = Path(__file__).parent / "scenarios"
# its RTP is captured and checked: with nothing beside it, after the parallel part
pytestmark = pytest.mark.serial
DRILL = [sys.executable, "-m", "harness.cli"]


def tshark_sip(path: Path) -> list[tuple[int, str, str, str]]:
    """(frame, Call-ID, first line, CSeq) of every SIP message tshark finds in a pcap."""
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e",
                          "frame.number", "-e", "sip.Call-ID", "-e", "sip.Request-Line",
                          "-e", "sip.Status-Line", "-e", "sip.CSeq"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        frame, call_id, request, status, cseq = line.split("\t")
        rows.append((int(frame), call_id, request or status, cseq))
    return rows


def test_the_capture_index_evidence_and_ladders_agree_with_tshark(isolated, tmp_path):
    s = yaml.safe_load((HERE / "short-node-loss.yaml").read_text())
    s["capture"] = {"rtp": True}
    res, run, summary = run_scenario(tmp_path, s)
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    folder = run / "capture"
    (ring,) = sorted(folder.glob("sip_*.pcap"))
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(ring.stat().st_mode & 0o777) == "0o600"
    # no dumpcap of this run is left running
    assert not [p for p in os.listdir("/proc") if p.isdigit() and str(run).encode()
                in Path(f"/proc/{p}/cmdline").read_bytes()]

    # the index: tshark's Call-IDs, frame for frame
    index = json.loads((folder / "index.json").read_text())
    theirs: dict[str, list[int]] = {}
    for frame, call_id, _, _ in tshark_sip(ring):
        theirs.setdefault(call_id, []).append(frame)
    ours = {c: [p["frame"] for p in ps] for c, ps in index["calls"].items()}
    assert ours == theirs
    calls = {r["call_id"] for r in __import__("csv").DictReader(open(run / "calls.csv"))}
    assert calls <= set(ours)  # every call of the drill is in it (and the health checks)

    # one call's packets: what tshark reads in the file `drill evidence` writes
    outage = summary["faults"][0]["outage"]
    edge = outage["first_answered"]
    out = subprocess.run(DRILL + ["evidence", str(run), edge, "-o", str(tmp_path / "e.pcap")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    got = tshark_sip(tmp_path / "e.pcap")  # (RTP headers in it too: not SIP)
    assert {c for _, c, _, _ in got} == {edge} and len(got) == len(theirs[edge])
    lines = [first for _, _, first, _ in got]
    assert lines[0].startswith("INVITE ") and any(x.startswith("BYE ") for x in lines)
    assert any(x.startswith("SIP/2.0 200") and cseq.endswith("INVITE")
               for _, _, x, cseq in got)
    # its RTP: headers only (96 bytes kept of each packet), each to or from an address its
    # SDP gave, all inside the call, in both directions (tshark reads them as RTP)
    media = {m for p in index["calls"][edge] for m in p["media"]}
    assert len(media) >= 2, media  # the caller's and the hotline's at least (each leg SDP names)
    rtp = subprocess.run(["tshark", "-r", str(tmp_path / "e.pcap"), "-o",
                          "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields", "-e",
                          "frame.cap_len", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst",
                          "-e", "udp.dstport", "-e", "rtp.ssrc"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [x.split("\t") for x in rtp.splitlines()]
    assert len(rows) > 100 and "RTP header(s)" in out.stdout  # a 2 s hold: 50 a second each way
    assert all(int(r[0]) <= 96 for r in rows)
    assert all({f"{r[1]}:{r[2]}", f"{r[3]}:{r[4]}"} & media for r in rows)
    assert len({r[5] for r in rows}) >= 2  # both directions' streams
    bad = subprocess.run(DRILL + ["evidence", str(run), "no-such-call"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "no packet of call no-such-call" in bad.stderr

    # report.html: a ladder for each edge of the outage, message by message as tshark reads
    ev = summary["evidence"]
    html = (run / "report.html").read_text()
    for call_id in (outage["last_answered"], outage["first_answered"]):
        ladder = ev["calls"][call_id]["ladder"]
        assert [p["first_line"] for p in ladder] == \
            [first for _, c, first, _ in sorted(tshark_sip(ring)) if c == call_id]
        assert f"drill evidence {run} {call_id}" in html
        assert "INVITE sip:" in html and "&rarr;" in html
    assert any(p["to"] in ("sbc", "pbx-1", "pbx-2") for p in ev["calls"][edge]["ladder"])
