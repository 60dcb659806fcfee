"""DTMF both ways a hotline uses it: RFC 4733 telephone-events in the RTP stream, and in-band
tones in the audio (ITU-T Q.23 frequencies), written and read here. Pure: no sockets.

Events (RFC 4733 §2.3): a 4-byte payload, event code, end bit, volume and duration in
timestamp units, sent every packet time while the key is held, all with the timestamp of
the event's start (the first with the marker bit), and the end packet three times. A
reader keys events by that timestamp, so the repeated ends and a lost update change
nothing; a digit is known at its first packet (`begun`: what an IVR acts on) and ended at
its first end packet (`heard`, with how long it was held).

Tones: two sines, one of the low group and one of the high. Each 20 ms frame (160
samples at 8 kHz) is measured at the eight frequencies with the Goertzel algorithm; a frame
holds a digit when its strongest low and high tones carry most of the frame's energy, lie
within the twist allowed between them, and stand well above the other tones of their
groups. A digit needs two such frames in a row (40 ms, Q.24's shortest) and ends at the
first frame without it, so speech, whose energy spreads over many frequencies, does not
read as digits.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

# the markers the practice contact centre and the agents' phones send (RFC 4733 keys):
# the IVR's prompt; an agent's answer
PROMPT_MARKER, AGENT_MARKER = "A", "D"

DIGITS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15 in this order
EVENT = struct.Struct("!BBH")
LOW, HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYPAD = ("123A", "456B", "789C", "*0#D")  # rows: LOW, columns: HIGH
RATE, FRAME = 8000, 160


@dataclass(frozen=True)
class Event:
    digit: str
    end: bool
    volume: int    # dBm0 below 0 (0-63)
    duration: int  # timestamp units (1/8000 s for an 8 kHz clock)


def event_payload(e: Event) -> bytes:
    return EVENT.pack(DIGITS.index(e.digit), (0x80 if e.end else 0) | (e.volume & 0x3F),
                      min(e.duration, 0xFFFF))


def parse_event(payload: bytes) -> Event | None:
    """An RFC 4733 event payload; None for anything else (other events, short payloads)."""
    if len(payload) < EVENT.size:
        return None
    code, flags, duration = EVENT.unpack_from(payload)
    if code >= len(DIGITS):
        return None
    return Event(DIGITS[code], bool(flags & 0x80), flags & 0x3F, duration)


def event_packets(digit: str, ms: int = 100, volume: int = 10,
                  step_ms: int = 20) -> list[tuple[bool, Event]]:
    """(marker, event) for each packet of one key press, as RFC 4733 §2.5 sends them: an
    update every `step_ms` while held, then the end three times."""
    out, units = [], ms * RATE // 1000
    for i, at in enumerate(range(0, units, step_ms * RATE // 1000)):
        out.append((i == 0, Event(digit, False, volume, at)))
    out += [(False, Event(digit, True, volume, units))] * 3
    return out


@dataclass(frozen=True)
class KeyPress:
    """A key the caller presses: when (wall clock), which, for how long, and how it is sent."""
    at: float
    digit: str
    ms: int = 100
    inband: bool = False  # the tone in the audio, not an RFC 4733 event


def presses(start: float, digits: str, ms: int = 100, gap_ms: int = 100,
            inband: bool = False) -> list[KeyPress]:
    """`digits` pressed one after another from `start`, each `ms` long, `gap_ms` apart."""
    return [KeyPress(start + i * (ms + gap_ms) / 1000, d, ms, inband)
            for i, d in enumerate(digits)]


@dataclass(frozen=True)
class Heard:
    """One digit heard: when it began (arrival, or the audio's own clock for tones), how long."""
    digit: str
    at: float
    seconds: float


class EventReader:
    """The digits in a stream's telephone-event packets, each once."""

    def __init__(self, clock_rate: int = RATE):
        self.clock_rate = clock_rate
        self.heard: list[Heard] = []    # ended digits, with how long each was held
        self.begun: list[Heard] = []    # every digit from its first packet (what to act on)
        self._open: dict[int, tuple[str, float]] = {}  # event timestamp -> (digit, first arrival)
        self._ended: set[int] = set()

    def add(self, timestamp: int, payload: bytes, arrival: float) -> None:
        e = parse_event(payload)
        if e is None or timestamp in self._ended:
            return
        if timestamp not in self._open:
            self.begun.append(Heard(e.digit, arrival, 0.0))
        digit, first = self._open.setdefault(timestamp, (e.digit, arrival))
        if e.end:
            self._ended.add(timestamp)
            del self._open[timestamp]
            self.heard.append(Heard(digit, first, e.duration / self.clock_rate))

    def close(self) -> None:
        """Digits whose end never came (lost, or the call ended) count from their start."""
        for ts, (digit, first) in sorted(self._open.items()):
            self.heard.append(Heard(digit, first, 0.0))
        self._open.clear()


# -- in-band tones ---------------------------------------------------------------------------

def _ulaw_table() -> list[int]:
    out = []
    for byte in range(256):
        u = ~byte & 0xFF
        sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
        magnitude = ((mantissa << 3) + 0x84) << exponent
        out.append(-(magnitude - 0x84) if sign else magnitude - 0x84)
    return out


ULAW_DECODE = _ulaw_table()  # G.711 µ-law byte -> 16-bit linear sample


def ulaw_encode(sample: int) -> int:
    """One 16-bit linear sample as a G.711 µ-law byte."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone(digit: str, ms: int, level: float = 0.25) -> list[int]:
    """A DTMF tone as 16-bit samples at 8 kHz, each sine at `level` of full scale."""
    row = next(i for i, r in enumerate(KEYPAD) if digit in r)
    lo, hi = LOW[row], HIGH[KEYPAD[row].index(digit)]
    return [int(32767 * level * (math.sin(2 * math.pi * lo * n / RATE)
                                 + math.sin(2 * math.pi * hi * n / RATE)))
            for n in range(ms * RATE // 1000)]


def tone_payloads(digit: str, ms: int, level: float = 0.25) -> list[bytes]:
    """A tone as 20 ms G.711 µ-law payloads (the last padded with silence)."""
    samples = tone(digit, ms, level)
    samples += [0] * (-len(samples) % FRAME)
    return [bytes(ulaw_encode(x) for x in samples[i:i + FRAME])
            for i in range(0, len(samples), FRAME)]


def _coefficients() -> list[float]:
    return [2 * math.cos(2 * math.pi * f / RATE) for f in LOW + HIGH]


_COEF = _coefficients()


def powers(frame: list[int]) -> list[float]:
    """Goertzel power at the eight DTMF frequencies, normalised so a full-scale sine of
    that frequency over the frame reads about 1."""
    out, scale = [], (len(frame) * 32768 / 2) ** 2
    for c in _COEF:
        s1 = s2 = 0.0
        for x in frame:
            s1, s2 = x + c * s1 - s2, s1
        out.append((s1 * s1 + s2 * s2 - c * s1 * s2) / scale)
    return out


def frame_digit(frame: list[int], twist_db: float = 8.0, floor: float = 1e-4) -> str | None:
    """The digit one frame holds, or None (see the module's docstring)."""
    p = powers(frame)
    lows, highs = p[:4], p[4:]
    li, hi = max(range(4), key=lows.__getitem__), max(range(4), key=highs.__getitem__)
    lo, hp = lows[li], highs[hi]
    if lo < floor or hp < floor:
        return None
    if abs(10 * math.log10(lo / hp)) > twist_db:
        return None
    if any(v * 10 > lo for i, v in enumerate(lows) if i != li) or \
            any(v * 10 > hp for i, v in enumerate(highs) if i != hi):
        return None  # another tone of the group within 10 dB: not a clean pair
    energy = sum(x * x for x in frame) / (len(frame) * (32768 ** 2) / 2) or 1e-12
    if (lo + hp) / energy < 0.6:
        return None  # the pair carries too little of the frame's energy: speech, noise
    return KEYPAD[li][hi]


class ToneReader:
    """Digits in decoded audio, frame by frame; `at` is the audio's own time (seconds from
    the first sample fed), so a caller maps it to the wall clock by its stream's start."""

    def __init__(self):
        self.heard: list[Heard] = []
        self._buf: list[int] = []
        self._frames = 0
        self._run: tuple[str, int, int] | None = None  # digit, first frame, frames held

    def add_ulaw(self, payload: bytes) -> None:
        self.add([ULAW_DECODE[b] for b in payload])

    def add(self, samples: list[int]) -> None:
        self._buf += samples
        while len(self._buf) >= FRAME:
            frame, self._buf = self._buf[:FRAME], self._buf[FRAME:]
            self._step(frame_digit(frame))

    def _step(self, digit: str | None) -> None:
        run = self._run
        if run and digit == run[0]:
            self._run = (run[0], run[1], run[2] + 1)
        else:
            self._finish()
            self._run = (digit, self._frames, 1) if digit else None
        self._frames += 1

    def _finish(self) -> None:
        if self._run and self._run[2] >= 2:
            digit, first, held = self._run
            self.heard.append(Heard(digit, first * FRAME / RATE, held * FRAME / RATE))
        self._run = None

    def close(self) -> None:
        self._finish()
