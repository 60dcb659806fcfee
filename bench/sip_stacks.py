"""Which SIP stack should the load generator use? Measured, not guessed.

Each candidate places N calls (INVITE, 200, ACK, short hold, BYE, 200) offered
at a fixed rate against a real SIPp UAS, in its own process. Reported: calls
completed by the candidate's own count, calls SIPp counts as successful (the
correctness check: both must agree), and the achieved rate.

Candidates: our hand-written UAC (harness.sip.uac), sippy 2.5 (RFC 3261
stack/B2BUA, its own reactor), pyVoIP 1.6 (softphone library).
Usage: python bench/sip_stacks.py [--calls 300] [--rate 100]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sip_load import free_port, sipp_count  # noqa: E402

OURS = """
import json, sys, threading, time
from harness.sip.uac import CallOptions, place_call
port, n, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
recs, threads = [], []
t0 = time.time()
for i in range(n):
    while time.time() < t0 + i / rate:
        time.sleep(0.001)
    t = threading.Thread(target=lambda: recs.append(place_call(("127.0.0.1", port),
                         CallOptions(hold=0.1, rtp=False))))
    t.start(); threads.append(t)
for t in threads: t.join()
print(json.dumps({"completed": sum(r.outcome == "completed" for r in recs),
                  "seconds": max(r.ended_at for r in recs) - t0}))
"""

SIPPY = """
import json, sys, time
from sippy.UA import UA
from sippy.CCEvents import CCEventTry, CCEventConnect, CCEventDisconnect
from sippy.SipConf import SipConf
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipCallId import SipCallId
from sippy.Core.EventDispatcher import ED2
from sippy.Time.Timeout import Timeout
from sippy.MsgBody import MsgBody
port, n, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
gc = {"_sip_address": "127.0.0.1", "_sip_port": 0, "_sip_logger": SipLogger("bench")}
gc["_sip_tm"] = SipTransactionManager(gc, lambda req, t: (req.genResponse(501, "NI"), None, None))
SDP = "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\nm=audio 40000 RTP/AVP 0\\r\\n"
done = {"ok": 0, "fail": 0, "started": 0, "last": 0.0}
def start():
    done["started"] += 1
    st = {"up": False}
    def cb(event, ua):
        if isinstance(event, CCEventConnect):
            st["up"] = True
            # workaround: sippy 2.5 compares the transport case-sensitively and
            # cannot send BYE to SIPp's Contact ';transport=UDP' otherwise
            ua.rTarget.transport = "udp"; ua.rAddr = (ua.rAddr[0], "udp")
            Timeout(lambda: ua.recvEvent(CCEventDisconnect()), 0.1)
    def dead(ua, *a):
        done["ok" if st["up"] else "fail"] += 1
        done["last"] = time.time()
        if done["ok"] + done["fail"] >= n:
            ED2.breakLoop()
    ua = UA(gc, event_cb=cb, nh_address=("127.0.0.1", port), nh_transport="udp", dead_cbs=(dead,))
    ua.recvEvent(CCEventTry((SipCallId(), "drill", "service", MsgBody(SDP), None, "drill")))
t0 = time.time()
Timeout(start, 1.0 / rate, n)
Timeout(ED2.breakLoop, 120)
ED2.loop()
print(json.dumps({"completed": done["ok"], "seconds": done["last"] - t0}))
"""

PYVOIP = """
import json, sys, time
from pyVoIP.VoIP import VoIPPhone, CallState
port, n = int(sys.argv[1]), int(sys.argv[2])
phone = VoIPPhone("127.0.0.1", port, "drill", "x", myIP="127.0.0.1", sipPort=0,
                  rtpPortLow=30000, rtpPortHigh=30400)
t0 = time.time(); ok = 0
phone.start()  # registers first; there is no way to place a call without a registrar
for i in range(n):
    c = phone.call("service")
    while c.state != CallState.ANSWERED and time.time() < t0 + 60:
        time.sleep(0.01)
    if c.state == CallState.ANSWERED:
        c.hangup(); ok += 1
print(json.dumps({"completed": ok, "seconds": time.time() - t0}))
"""


def measure(name: str, code: str, calls: int, rate: float, budget: float) -> dict:
    port = free_port()
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
                            "-nostdin", "-timeout", f"{int(budget) + 30}s"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(port), str(calls), str(rate)],
                             capture_output=True, text=True, timeout=budget)
        lines = out.stdout.strip().splitlines()
        fig = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else \
            {"completed": 0, "seconds": None, "error": (out.stderr or out.stdout)[-300:]}
    except subprocess.TimeoutExpired:
        fig = {"completed": 0, "seconds": None, "error": f"no result within {budget:g}s (hung)"}
    try:  # SIPp exits by itself after -m calls, printing its final counts
        screen, _ = uas.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        uas.terminate()
        screen, _ = uas.communicate(timeout=10)
    fig["sipp_successful"] = sipp_count(screen, "Successful call")
    fig["rate"] = fig["completed"] / fig["seconds"] if fig.get("seconds") else 0.0
    fig["name"] = name
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rate", type=float, default=100.0)
    a = ap.parse_args()
    print(f"{a.calls} calls offered at {a.rate:g}/s, hold 0.1 s, against a SIPp UAS")
    for name, code, budget in (("hand-written UAC", OURS, 120), ("sippy 2.5", SIPPY, 150),
                               ("pyVoIP 1.6", PYVOIP, 30)):
        f = measure(name, code, a.calls, a.rate, budget)
        print(f"  {name:18s} completed {f['completed']:4d}  SIPp counts {f['sipp_successful']:4d}  "
              f"achieved {f['rate']:6.1f} calls/s" + (f"  ({f['error']})" if f.get("error") else ""),
              flush=True)


if __name__ == "__main__":
    main()
