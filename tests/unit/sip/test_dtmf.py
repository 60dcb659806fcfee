"""DTMF: RFC 4733 events (against SIPp's own recordings of key presses) and in-band tones
(Goertzel over G.711), with speech-like audio and single tones that must not read as digits."""
import math
import random
import struct
from pathlib import Path

import pytest

from harness.sip import dtmf

PCAPS = Path("/usr/share/sip-tester")  # Debian's sip-tester: dtmf_2833_<digit>.pcap


def pcap_rtp(path: Path) -> list[tuple[float, int, int, bytes]]:
    """(capture time, marker, timestamp, payload) of each RTP packet of a classic pcap
    (Ethernet, IPv4 without options, UDP), as SIPp's files are."""
    data, out, at = path.read_bytes(), [], 24
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    while at < len(data):
        sec, usec, length, _ = struct.unpack_from("<IIII", data, at)
        rtp = data[at + 16 + 42: at + 16 + length]
        at += 16 + length
        out.append((sec + usec / 1e6, rtp[1] >> 7, struct.unpack_from("!I", rtp, 4)[0], rtp[12:]))
    return out


@pytest.mark.parametrize("digit", "0123456789")
def test_sipps_recorded_key_presses_read_as_their_digits(digit):
    packets = pcap_rtp(PCAPS / f"dtmf_2833_{digit}.pcap")
    reader = dtmf.EventReader()
    for at, _, ts, payload in packets:
        reader.add(ts, payload, at)
    reader.close()
    # one digit per file, timed by its first packet, however many end packets came
    assert [h.digit for h in reader.heard] == [digit]
    assert reader.heard[0].at == packets[0][0]
    assert reader.heard[0].seconds == pytest.approx(2240 / 8000)
    # its first packet lost: still the same digit, from the next packet's arrival
    late = dtmf.EventReader()
    for at, _, ts, payload in packets[1:]:
        late.add(ts, payload, at)
    assert [h.digit for h in late.heard] == [digit] and late.heard[0].at == packets[1][0]


def test_events_written_are_read_back_and_ends_count_once():
    packets = dtmf.event_packets("#", ms=100)
    assert packets[0][0] and not any(m for m, _ in packets[1:])
    assert [e.end for _, e in packets] == [False] * 5 + [True] * 3
    assert all(dtmf.parse_event(dtmf.event_payload(e)) == e for _, e in packets)
    reader = dtmf.EventReader()
    for i, (_, e) in enumerate(packets):
        reader.add(1600, dtmf.event_payload(e), 10.0 + i * 0.02)
    reader.add(3200, dtmf.event_payload(dtmf.Event("7", True, 10, 800)), 11.0)
    assert [(h.digit, h.at, h.seconds) for h in reader.heard] == [("#", 10.0, 0.1), ("7", 11.0, 0.1)]
    assert dtmf.parse_event(b"\x20\x80\x00\x10") is None  # event 32: not a digit
    assert dtmf.parse_event(b"\x01") is None


def test_ulaw_round_trip():
    assert dtmf.ulaw_encode(0) == 0xFF and dtmf.ULAW_DECODE[0xFF] == 0
    for x in (-32000, -1000, -50, 50, 1000, 12345, 32000):
        back = dtmf.ULAW_DECODE[dtmf.ulaw_encode(x)]
        assert abs(back - x) <= max(8, abs(x) / 16), (x, back)


def _through_g711(samples):
    return [dtmf.ULAW_DECODE[dtmf.ulaw_encode(s)] for s in samples]


def test_every_key_as_a_tone_reads_as_its_digit_at_its_place():
    silence = [0] * 800  # 100 ms
    audio = list(silence)
    for d in dtmf.DIGITS:
        audio += dtmf.tone(d, 80) + silence
    reader = dtmf.ToneReader()
    reader.add(_through_g711(audio))
    reader.close()
    assert "".join(h.digit for h in reader.heard) == dtmf.DIGITS
    for i, h in enumerate(reader.heard):
        began = 0.1 + i * 0.18
        assert abs(h.at - began) <= 0.02 and h.seconds >= 0.04, (h, began)


def test_a_tone_shorter_than_40_ms_and_a_weak_one_are_not_digits():
    reader = dtmf.ToneReader()
    reader.add(_through_g711([0] * 800 + dtmf.tone("5", 30) + [0] * 800
                             + dtmf.tone("6", 80, level=0.002) + [0] * 800))
    reader.close()
    assert reader.heard == []


def test_speech_like_audio_single_tones_and_noise_are_not_digits():
    rng = random.Random(7)
    audio, phase = [], 0.0
    for n in range(8000 * 3):  # 3 s of a voiced, gliding vowel with formants, and breath
        f0 = 110 + 40 * math.sin(2 * math.pi * 0.7 * n / 8000)
        phase += 2 * math.pi * f0 / 8000
        voice = sum(math.sin(k * phase) * sum(math.exp(-((k * f0 - f) / 120) ** 2)
                                             for f in (700, 1220, 2600)) / k ** 0.5
                    for k in range(1, 30))
        audio.append(int(4000 * voice + rng.gauss(0, 300)))
    audio += [int(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(8000)]  # 1 kHz
    audio += [int(6000 * (math.sin(2 * math.pi * 350 * n / 8000)  # a dial tone: 350 + 440 Hz
                          + math.sin(2 * math.pi * 440 * n / 8000))) for n in range(8000)]
    audio += [int(rng.gauss(0, 5000)) for _ in range(8000)]  # white noise
    reader = dtmf.ToneReader()
    reader.add(_through_g711(audio))
    reader.close()
    assert reader.heard == []


def test_a_tone_under_noise_and_twist_still_reads():
    # 20 dB above white noise, and the high tone 4 dB weaker than the low (a line's twist)
    rng = random.Random(3)
    row, col = 2, 1  # "8": 852 + 1336 Hz
    tone = [int(8000 * math.sin(2 * math.pi * dtmf.LOW[row] * n / 8000)
                + 8000 * 10 ** (-4 / 20) * math.sin(2 * math.pi * dtmf.HIGH[col] * n / 8000)
                + rng.gauss(0, 800)) for n in range(640)]
    reader = dtmf.ToneReader()
    reader.add(_through_g711([int(rng.gauss(0, 800)) for _ in range(800)] + tone + [0] * 800))
    reader.close()
    assert [h.digit for h in reader.heard] == ["8"]
