"""A caller that gives up on an INVITE the far end still answers: it CANCELs, and the late
200 is ACKed and ended with a BYE, judged against the far end's own counts (a sandbox PBX
that answers after its ring time whatever the CANCEL said, as an answer crossing it does:
`--answer-cancelled`; without it the PBX answers a cancelled INVITE 487 and never 200)."""
import json
import signal
import subprocess
import sys
import threading

from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, wait_for

ANSWER_AFTER = 3.0  # s the PBX rings before its 200; the caller gives up at 1.5 s


def test_a_late_answer_is_acked_and_ended(tmp_path):
    port, stats = free_udp_port(), tmp_path / "pbx.stats.json"
    pbx = subprocess.Popen([sys.executable, "-m", "harness.lab.pbx", "--name", "pbx-late",
                            "--listen", f"127.0.0.1:{port}", "--ring-delay", "0.1",
                            "--answer-delay", str(ANSWER_AFTER), "--stats-file", str(stats),
                            "--answer-cancelled"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _answers_options(port), 10, what="the PBX")
        rec = place_call(("127.0.0.1", port), CallOptions(hold=0.5, rtp=False, invite_timeout=1.5,
                                                          bye_timeout=2))
        assert rec.outcome == "failed" and "timeout" in rec.reason and rec.ringing_at, rec
        # the caller's give-up ends once the late 200 is ACKed and BYEd (bounded: 8 s)
        wait_for(lambda: not any(t.name == "invite-give-up" for t in threading.enumerate()),
                 12, what="the give-up to end")
    finally:
        pbx.send_signal(signal.SIGTERM)
        pbx.wait(10)
    counts = json.loads(stats.read_text())
    # the PBX answered the call once, got its ACK (else it would still hold it) and its BYE
    assert counts["answered"] == 1 and counts["byes"] == 1 and counts["active"] == 0, counts
    assert "never_acked" not in counts


def _answers_options(port: int) -> bool:
    from harness.sip.probe import options_ping
    return options_ping(("127.0.0.1", port), timeout=0.5) == 200
