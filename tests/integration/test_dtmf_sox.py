"""In-band DTMF made by a tool of its own (sox, G.711 µ-law at 8 kHz) read by the tone reader:
every key, in order, at its place."""
import subprocess

from harness.sip import dtmf
from tests.conftest import need


def test_sox_made_key_presses_read_as_their_digits(tmp_path):
    sox, out = need("sox"), tmp_path / "keys.ul"
    parts = []
    for i, d in enumerate(dtmf.DIGITS):
        row = next(r for r, keys in enumerate(dtmf.KEYPAD) if d in keys)
        lo, hi = dtmf.LOW[row], dtmf.HIGH[dtmf.KEYPAD[row].index(d)]
        part = tmp_path / f"{i}.ul"
        # 100 ms of silence, then 70 ms of the pair at -10 dBFS each, mixed to one channel
        subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw", str(part),
                        "synth", "0.07", "sine", str(lo), "sine", str(hi), "remix", "-",
                        "gain", "-n", "-3", "pad", "0.1", "0"], check=True, timeout=30)
        parts.append(part.read_bytes())
    out.write_bytes(b"".join(parts))
    reader = dtmf.ToneReader()
    reader.add_ulaw(out.read_bytes())
    reader.close()
    assert "".join(h.digit for h in reader.heard) == dtmf.DIGITS
    for i, h in enumerate(reader.heard):
        assert abs(h.at - (0.1 + i * 0.17)) <= 0.02, (i, h)
