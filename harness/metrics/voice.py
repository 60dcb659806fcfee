"""Voice quality per call and per group of calls: loss each way, round trip, MOS. Pure.

A call's media is measured both ways: what the caller heard (the far end's
stream, by its sequence numbers) and what the hotline heard of the caller
(the far end's receiver reports). Each direction gets its own E-model MOS
(emodel.py: G.711 with concealment, Ppl and BurstR from that direction's own
loss pattern, delay from the measured round trip); the call's MOS is the worse
of the two, because a conversation is as good as its worse direction. When the
far end only echoes the caller's packets (SIPp's -rtp_echo), the loss seen is
the round trip's and each direction is taken to have lost the same share.

Silence is judged apart from MOS, since a caller who hears nothing at all is
not a "poor" call but a broken one: dead air (the caller heard no audio, or it
stopped longer than the media gap while the call went on) and one-way audio
(one side heard the other, not the reverse, where the far end tells what it
heard). Figures per node as well as per carrier name the node that was silent.

Over SRTP, packets that arrived but failed authentication (a key mismatch) were
neither lost by the network nor silence of the hotline: they are counted apart
(`srtp_failed` calls), left out of the loss, and such a call is not dead air
but an SRTP failure, though its MOS still says what the caller heard: nothing.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from harness.metrics import emodel
from harness.metrics.calls import percentile
from harness.metrics.records import CallRecord, FaultWindow

# mouth-to-ear delay the network does not show: 20 ms G.711 frame + 20 ms de-jitter buffer
DEVICE_DELAY_MS = 40.0


@dataclass
class CallVoice:
    call_id: str
    carrier: str
    expected_down: int        # the far end's packets the caller should have heard
    lost_down: int
    expected_up: int          # the caller's packets the hotline should have heard (0: unknown)
    lost_up: int
    rtt_ms: float | None
    mos_down: float
    mos_up: float | None
    mos: float                # the worse direction
    node: str = ""
    dead_air: bool = False    # the caller heard nothing, or nothing for longer than the gap
    one_way: bool = False     # audio went one way only (known where the far end reports)
    srtp_failed: int = 0      # the far end's packets that failed SRTP authentication
    srtp: bool = False        # the media was SRTP

    @property
    def loss_down(self) -> float:
        return self.lost_down / self.expected_down

    @property
    def loss_up(self) -> float | None:
        return self.lost_up / self.expected_up if self.expected_up else None

    def to_dict(self) -> dict:
        return {**asdict(self), "loss_down": self.loss_down, "loss_up": self.loss_up}


def _one_way(expected: int, received: int, bursts: int, ta_ms: float) -> tuple[int, int, float]:
    """(expected, lost, MOS) of one direction."""
    expected = max(expected, received, 1)
    lost = expected - received
    burst_r = emodel.burst_ratio(received, lost, bursts)
    return expected, lost, emodel.mos(emodel.rating(ppl=100 * lost / expected, burst_r=burst_r,
                                                    ta_ms=ta_ms))


MEDIA_GAP = 1.0  # s: the scenario's `metrics.media_gap` unless given


def silences(r: CallRecord, max_gap: float) -> tuple[bool, bool]:
    """(dead air, one-way audio) of an answered call with media. Dead air counts calls the
    hotline kept up (ended normally: our BYE got its 200); a call that dropped went silent
    because it ended, which the dropped-call rate and continuity already judge."""
    heard = r.rtp_received > 0
    dead = r.outcome == "completed" and (not heard or r.rtp_max_gap > max_gap)
    hotline_heard = r.rtp_up_received > 0 if r.rtp_up_expected > 0 else None
    one_way = (not r.rtp_echo and hotline_heard is not None and heard != hotline_heard)
    return dead, one_way


def call_voice(r: CallRecord, max_gap: float = MEDIA_GAP) -> CallVoice | None:
    """The voice figures of one answered call with media; None for any other call."""
    if not (r.answered and r.media and r.rtp_expected > 0):
        return None
    dead, lopsided = silences(r, max_gap)
    failed = r.srtp_auth_failed
    dead = dead and not failed  # not silence: audio came and could not be read (named apart)
    ta = (r.rtp_rtt_ms or 0.0) / 2 + DEVICE_DELAY_MS
    if r.rtp_echo:  # round trip only: split the loss evenly between the two ways
        rt_kept = min(r.rtp_received, r.rtp_expected) / r.rtp_expected
        one_way = 1 - math.sqrt(rt_kept)
        exp, lost, m = _one_way(r.rtp_expected, round(r.rtp_expected * (1 - one_way)),
                                r.rtp_bursts, ta)
        return CallVoice(r.call_id, r.carrier, exp, lost, exp, lost, r.rtp_rtt_ms, m, m, m,
                         r.node, dead, lopsided)
    exp_down, unheard, mos_down = _one_way(r.rtp_expected, min(r.rtp_received, r.rtp_expected),
                                           r.rtp_bursts, ta)
    lost_down = max(0, unheard - failed)  # the network's loss: not the packets that came unreadable
    exp_up, lost_up, mos_up = 0, 0, None
    if r.rtp_up_expected > 0:
        exp_up, lost_up, mos_up = _one_way(r.rtp_up_expected, r.rtp_up_received,
                                           r.rtp_up_bursts, ta)
    worst = mos_down if mos_up is None else min(mos_down, mos_up)
    return CallVoice(r.call_id, r.carrier, exp_down, lost_down, exp_up, lost_up, r.rtp_rtt_ms,
                     mos_down, mos_up, worst, r.node, dead, lopsided, failed, r.srtp)


def summary(voices: list[CallVoice]) -> dict:
    """MOS p5 and p50, loss each way (lost packets over expected ones, all calls pooled),
    mean round trip, over a group of calls."""
    if not voices:
        return {"calls": 0, "mos_p5": None, "mos_p50": None, "loss_down": None,
                "loss_up": None, "packets_down": 0, "packets_up": 0, "rtt_ms": None,
                "dead_air": 0, "one_way": 0, "dead_air_share": None, "one_way_share": None,
                "srtp_calls": 0, "srtp_failed": 0, "srtp_failed_share": None,
                "srtp_failed_packets": 0}
    exp_down, exp_up = sum(v.expected_down for v in voices), sum(v.expected_up for v in voices)
    rtts = [v.rtt_ms for v in voices if v.rtt_ms is not None]
    return {"calls": len(voices),
            "mos_p5": round(percentile([v.mos for v in voices], 5), 3),
            "mos_p50": round(percentile([v.mos for v in voices], 50), 3),
            "loss_down": sum(v.lost_down for v in voices) / exp_down,
            "loss_up": sum(v.lost_up for v in voices) / exp_up if exp_up else None,
            "packets_down": exp_down, "packets_up": exp_up,
            "rtt_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
            "dead_air": sum(v.dead_air for v in voices), "one_way": sum(v.one_way for v in voices),
            "dead_air_share": sum(v.dead_air for v in voices) / len(voices),
            "one_way_share": sum(v.one_way for v in voices) / len(voices),
            "srtp_calls": sum(v.srtp for v in voices),
            "srtp_failed": sum(bool(v.srtp_failed) for v in voices),
            "srtp_failed_share": sum(bool(v.srtp_failed) for v in voices) / len(voices),
            "srtp_failed_packets": sum(v.srtp_failed for v in voices)}


def overlaps(r: CallRecord, w: FaultWindow) -> bool:
    """The call was up (answered, not yet ended) at some moment of the fault window."""
    end = w.ended_at if w.ended_at is not None else float("inf")
    call_end = r.ended_at or r.planned_end or r.answered_at
    return r.answered_at is not None and r.answered_at < end and call_end > w.started_at


def voice_report(records: list[CallRecord], windows: list[FaultWindow],
                 max_gap: float = MEDIA_GAP) -> dict:
    """Voice figures overall, per carrier, per node, and per fault window (calls up during it)."""
    pairs = [(r, v) for r in records if (v := call_voice(r, max_gap)) is not None]
    voices = [v for _, v in pairs]
    carriers = sorted({v.carrier for v in voices})
    nodes = sorted({v.node for v in voices})
    sent = [r for r in records if r.media and r.rtp_sent]
    return {
        # the generator's own sending: packets that left late are its slip, not the hotline's
        "sending": {"packets": sum(r.rtp_sent for r in sent),
                    "late": sum(r.rtp_send_late for r in sent)},
        "overall": summary(voices),
        "per_carrier": {c: summary([v for v in voices if v.carrier == c]) for c in carriers},
        "per_node": {n: summary([v for v in voices if v.node == n]) for n in nodes},
        "per_fault": {w.fault_id: summary([v for r, v in pairs if overlaps(r, w)])
                      for w in windows},
    }
