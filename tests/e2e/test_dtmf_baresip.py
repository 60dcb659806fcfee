"""Keys the caller presses, as a real user agent (baresip) received them: RFC 4733 events
in its own log, in order; in-band tones in the audio it decoded (its sndfile recording), at
the times they were pressed."""
import os
import re
import struct
import wave

from harness.sip import dtmf
from harness.sip.uac import CallOptions, place_call
from tests.baresip_ua import Baresip

EVENT = re.compile(r"received event: '(.)' \(end=1\)")


def _baresip(tmp_path, record=False):
    host = f"{os.environ['HOTLINE_DRILL_SANDBOX_BLOCK']}.61"
    account = f"<sip:hotline@{host}:5070>;regint=0;answermode=auto;audio_codecs=PCMU"
    return host, Baresip(tmp_path / "ua", f"{host}:5070", account, seconds=60, record=record)


def _sent(rec) -> list[tuple[str, float]]:
    return [(d.split("@")[0], float(d.split("@")[1])) for d in rec.dtmf_sent.split()]


def test_rfc_4733_keys_reach_baresip_in_order(isolated, tmp_path):
    host, ua = _baresip(tmp_path)
    with ua:
        rec = place_call((host, 5070), CallOptions(hold=2.5, keys=((0.5, "12#"), (1.5, "90")),
                                                   invite_timeout=4, bye_timeout=2))
        ua.wait_for("terminated", 5)
        got = EVENT.findall(ua.text())
    assert rec.outcome == "completed", rec.reason
    assert [d for d, _ in _sent(rec)] == list("12#90") and got == list("12#90"), (rec.dtmf_sent, got)
    # each press 100 ms, the next 100 ms after it ends: 200 ms apart, from the asked start
    times = [t for _, t in _sent(rec)]
    assert all(abs(a - b) <= 0.03 for a, b in zip(times, (0.5, 0.7, 0.9, 1.5, 1.7))), times


def test_in_band_keys_are_in_the_audio_baresip_decoded(isolated, tmp_path):
    host, ua = _baresip(tmp_path, record=True)
    with ua:
        rec = place_call((host, 5070), CallOptions(hold=2.0, keys=((0.5, "47*"),), dtmf_inband=True,
                                                   invite_timeout=4, bye_timeout=2))
        ua.wait_for("terminated", 5)
    assert rec.outcome == "completed", rec.reason
    (decoded,) = (tmp_path / "ua").glob("dump-*-dec.wav")  # what baresip heard of the call
    with wave.open(str(decoded)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        data = w.readframes(w.getnframes())
    reader = dtmf.ToneReader()
    reader.add(list(struct.unpack(f"<{len(data) // 2}h", data)))
    reader.close()
    assert "".join(h.digit for h in reader.heard) == "47*"
    # the recording starts with the call's first packet; the presses came 200 ms apart
    starts = [h.at for h in reader.heard]
    assert all(abs((b - a) - 0.2) <= 0.02 for a, b in zip(starts, starts[1:])), starts
    assert all(h.seconds >= 0.08 for h in reader.heard)
