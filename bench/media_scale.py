"""Media at scale: how many calls with live RTP one generator process keeps, against SIPp's own.

For each number of concurrent calls N (ramped up over --ramp seconds, each held
--hold seconds, G.711 RTP every 20 ms both ways), our generator (one process,
the drill's LoadController) calls a SIPp UAS that echoes RTP (-rtp_echo) on
127.0.0.1. A step passes when the generator keeps its media honest:
  - loss of its own making < 0.1 % (on loopback with an echoing far end, every
    packet not back is the generator's or SIPp's doing, not a network's);
  - send jitter p99 < 5 ms (fewer than 1 % of its packets left more than 5 ms
    after their 20 ms slot);
  - every call completed.
The reference, in the same run: a SIPp UAC streaming RTP (rtp_stream, this
build's RTPSTREAM) at the same N against the same kind of UAS, whose CPU time
is read from /proc. Printed: the highest passing N (calls per core, as the
generator is one process), both generators' CPU seconds per call-minute of
media, and our memory per held media call (peak RSS slope between two steps).

With --srtp, each step runs our generator twice, plain RTP and then SRTP (SDES,
AES_CM_128_HMAC_SHA1_80 through libsrtp2), and prints the CPU ratio; its far end
is a SIPp UAS that answers our offer with our own key line and echoes every
packet as it came, so the echo authenticates under that key: the generator does
all of SRTP's work (protect each packet, unprotect each echo), SIPp none.

Usage: python bench/media_scale.py [--steps 50,100,200,300,400] [--hold 15] [--ramp 5] [--srtp]
Every load is bounded: SIPp gets -m (a call count), our generator --calls.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sip_load import stop  # noqa: E402  (bench helpers, one folder)

from harness.sip.message import free_port  # noqa: E402

UAC_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="media-uac">
  <send retrans="500"><![CDATA[
INVITE sip:hotline@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bench@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:hotline@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:bench@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=bench 1 1 IN IP4 [local_ip]
s=bench
c=IN IP4 [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:hotline@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bench@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500"><![CDATA[
BYE sip:hotline@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bench@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
"""


SRTP_ECHO_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="srtp-echo-uas">
  <recv request="INVITE" crlf="true">
    <action><ereg regexp="a=crypto:1 [A-Z0-9_]+ inline:[A-Za-z0-9+/=]+" search_in="msg" check_it="true" assign_to="crypto"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=bench 1 1 IN IP[local_ip_type] [local_ip]
s=bench
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/SAVP 0
a=rtpmap:0 PCMU/8000
[$crypto]
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


def start_uas(calls: int, srtp: Path | None = None) -> tuple[subprocess.Popen, int]:
    """A SIPp UAS that answers with SDP and echoes RTP (with `srtp`, that scenario file)."""
    port, mport = free_port(), free_port()
    scenario = ["-sf", str(srtp)] if srtp else ["-sn", "uas"]
    proc = subprocess.Popen(["sipp", *scenario, "-i", "127.0.0.1", "-p", str(port),
                             "-mi", "127.0.0.1", "-mp", str(mport), "-rtp_echo", "-m", str(calls),
                             "-nostdin", "-timeout", "600s", "-max_socket", "60000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # bench only: let SIPp bind before the first INVITE
    return proc, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ours(n: int, hold: float, ramp: float, srtp: Path | None = None) -> dict:
    uas, port = start_uas(n, srtp)
    try:
        out = subprocess.run([sys.executable, "-m", "harness.load.standalone",
                              "--entry", f"127.0.0.1:{port}", "--cps", str(n / ramp),
                              "--hold", str(hold), "--seconds", str(ramp + hold * 2),
                              "--rtp-share", "1", "--calls", str(n),
                              "--srtp", "require" if srtp else "off"],
                             capture_output=True, text=True, timeout=ramp + hold * 4 + 120)
    finally:
        stop(uas)
    lines = out.stdout.strip().splitlines()
    if not lines:
        return {"n": n, "error": out.stderr[-400:]}
    fig = json.loads(lines[-1])
    rtp = fig["rtp"]
    loss = 1 - rtp["received"] / rtp["expected"] if rtp["expected"] else 1.0
    late = rtp["sent_late"] / rtp["sent"] if rtp["sent"] else 1.0
    return {"n": n, "held": fig["peak_in_flight"], "completed": fig["completed"],
            "attempts": fig["attempts"], "loss": loss, "sent_late": late,
            "cpu": fig["cpu_seconds"], "load_cpu": fig["load_cpu_seconds"],
            "rss_kib": fig["max_rss_kib"],
            "srtp_calls": rtp["srtp_calls"], "srtp_auth_failed": rtp["srtp_auth_failed"],
            "pass": fig["completed"] == n and loss < 0.001 and late < 0.01
            and (not srtp or (rtp["srtp_calls"] == n and rtp["srtp_auth_failed"] == 0))}


def sipp(n: int, hold: float, ramp: float, audio: Path, folder: Path) -> dict:
    xml = folder / "media-uac.xml"
    xml.write_text(UAC_XML.replace("{audio}", str(audio)).replace("{hold_ms}", str(int(hold * 1000))))
    uas, port = start_uas(n)
    try:
        proc = subprocess.Popen(["sipp", f"127.0.0.1:{port}", "-sf", str(xml), "-i", "127.0.0.1",
                                 "-p", str(free_port()), "-mi", "127.0.0.1", "-r", str(n / ramp),
                                 "-m", str(n), "-nostdin", "-timeout", f"{int(ramp + hold * 3 + 60)}s",
                                 "-max_socket", "60000", "-trace_stat", "-stf",
                                 str(folder / "uac-stat.csv"), "-fd", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = 0.0
        while proc.poll() is None:  # read its CPU time while it exists
            try:
                cpu = cpu_seconds(proc.pid)
            except OSError:
                break
            time.sleep(0.2)
        proc.wait(ramp + hold * 3 + 90)
    finally:
        stop(uas)
    ok = 0
    stat = folder / "uac-stat.csv"
    if stat.exists():
        rows = [r.split(";") for r in stat.read_text().splitlines() if r]
        if len(rows) > 1:
            ok = int(rows[-1][rows[0].index("SuccessfulCall(C)")])
    return {"n": n, "completed": ok, "cpu": cpu, "exit": proc.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="50,100,200,300,400")
    ap.add_argument("--hold", type=float, default=15.0)
    ap.add_argument("--ramp", type=float, default=5.0)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--srtp", action="store_true", help="also each step with SRTP (SDES) media, "
                    "against our own plain RTP at the same step")
    a = ap.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester")
    steps = [int(x) for x in a.steps.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="media-bench-"))
    audio = folder / "silence.ulaw"
    audio.write_bytes(b"\xff" * 8000 * 2)  # 2 s of µ-law silence, looped
    print(f"N concurrent calls (ramp {a.ramp:g}s, hold {a.hold:g}s, G.711 RTP both ways) "
          f"against a SIPp UAS echoing RTP on 127.0.0.1")
    if a.srtp:
        return srtp_steps(steps, a, folder)
    results, best = [], 0
    for n in steps:
        o = ours(n, a.hold, a.ramp)
        s = sipp(n, a.hold, a.ramp, audio, folder)
        results.append({"ours": o, "sipp": s})
        if "error" in o:
            print(f"  N={n}: ours failed: {o['error']}")
            break
        media_minutes = n * a.hold / 60
        print(f"  N={n:4d}: ours held {o['held']:4d}, completed {o['completed']}/{o['attempts']}, "
              f"own loss {o['loss']:.3%}, sent late {o['sent_late']:.2%}, "
              f"CPU {o['cpu'] / media_minutes:.2f} s per call-minute, RSS {o['rss_kib'] / 1024:.0f} MiB"
              f" | SIPp completed {s['completed']}/{n}, CPU {s['cpu'] / media_minutes:.2f} s per "
              f"call-minute -> {'pass' if o['pass'] else 'FAIL'}", flush=True)
        if not o["pass"]:
            break
        best = n
    passing = [r["ours"] for r in results if r["ours"].get("pass")]
    if len(passing) >= 2:
        lo, hi = passing[0], passing[-1]
        per_call = (hi["rss_kib"] - lo["rss_kib"]) / max(hi["held"] - lo["held"], 1)
        print(f"memory per held media call (ours): {per_call:.1f} KiB "
              f"(peak RSS at {lo['held']} and {hi['held']} calls held)")
    print(f"highest passing N (one process = one core): {best} media calls")
    if a.json:
        Path(a.json).write_text(json.dumps({"best": best, "steps": results}, indent=2))


def srtp_steps(steps: list[int], a, folder: Path) -> None:
    """Each step plain and then SRTP, our generator both times: the price of SRTP (CPU from
    the load's start, not the imports'), and the highest N whose SRTP step keeps its media
    honest."""
    xml = folder / "srtp-echo-uas.xml"
    xml.write_text(SRTP_ECHO_UAS)
    print(f"N concurrent calls (ramp {a.ramp:g}s, hold {a.hold:g}s, G.711 both ways), our "
          "generator with plain RTP, then with SRTP, against a SIPp UAS echoing on 127.0.0.1")
    results, best = [], 0
    for n in steps:
        plain, secure = ours(n, a.hold, a.ramp), ours(n, a.hold, a.ramp, xml)
        results.append({"plain": plain, "srtp": secure})
        if "error" in plain or "error" in secure:
            print(f"  N={n}: failed: {plain.get('error') or secure.get('error')}")
            break
        minutes = n * a.hold / 60
        print(f"  N={n:4d}: plain own loss {plain['loss']:.3%}, late {plain['sent_late']:.2%}, "
              f"CPU {plain['load_cpu'] / minutes:.2f} s per call-minute | SRTP {secure['srtp_calls']} "
              f"calls, own loss {secure['loss']:.3%}, late {secure['sent_late']:.2%}, "
              f"auth failures {secure['srtp_auth_failed']}, CPU {secure['load_cpu'] / minutes:.2f} s "
              f"per call-minute (x{secure['load_cpu'] / plain['load_cpu']:.2f} of plain) -> "
              f"{'pass' if secure['pass'] else 'FAIL'}", flush=True)
        if not secure["pass"]:
            break
        best = n
    print(f"highest passing N with SRTP (one process = one core): {best} media calls")
    if a.json:
        Path(a.json).write_text(json.dumps({"best_srtp": best, "steps": results}, indent=2))


if __name__ == "__main__":
    main()
