"""RFC 4733 digits a real far end sends, read by the caller at the delays they were sent:
SIPp plays its own recordings of key presses ("5" 600 ms after the ACK, "9" 900 ms later)
and the call's record says which digits came when, within 40 ms."""
import subprocess
from pathlib import Path

from harness.sip.uac import CallOptions, place_call
from tests.conftest import free_udp_port, need
from tests.integration.test_sipp_interop import sipp_count

SCENARIO = Path(__file__).parent / "sipp" / "uas-digits.xml"


def test_digits_from_sipp_read_at_the_delays_they_were_sent():
    port = free_udp_port()
    proc = subprocess.Popen([need("sipp"), "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port),
                             "-mi", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rec = place_call(("127.0.0.1", port), CallOptions(hold=2.5, invite_timeout=4, bye_timeout=2))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert sipp_count(out, "Successful call") == 1, out[-1500:]
    assert rec.outcome == "completed", rec.reason
    heard = [(d.split("@")[0], float(d.split("@")[1])) for d in rec.dtmf_heard.split()]
    assert [d for d, _ in heard] == ["5", "9"], rec.dtmf_heard
    # SIPp's clock starts at the ACK, sent as soon as the 200 came (the record's zero)
    for (_, at), sent in zip(heard, (0.6, 1.5)):
        assert abs(at - sent) <= 0.040, (rec.dtmf_heard, sent)
