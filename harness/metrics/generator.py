"""Is the load generator's own record good enough to judge the hotline? Pure.

When it is not, the run's verdicts are inconclusive (exit 4): the harness
never blames the hotline for its own overload.
"""
from __future__ import annotations

LATE_SHARE = 0.05   # more than 5 % of offered calls late by > 100 ms (or never placed) ...
# ... or the event loop's p99 stall above 250 ms. Answers, ringing and RTP are timed by the
# kernel's receive stamp (sip/arrival.py), so a stall moves no figure by itself: it delays what
# the generator sends, calls (counted above) and ACKs. Past half of SIP's T1 (500 ms) at p99, a
# PBX would be retransmitting its 200s because of the harness, not the hotline.
LOOP_LAG_P99 = 0.25
# ... or a load worker lost: each makes the run inconclusive
# ... or, when a media target is judged (media_loss, mos_p5, mos_p50), more than 1 % of the
# generator's RTP packets left over 5 ms after their slot (its send jitter p99 above 5 ms):
# the loss and MOS figures would then carry its own slip
RTP_LATE_SHARE = 0.01
MEDIA_TARGETS = ("media_loss", "mos_p5", "mos_p50")
# ... but when the only media target is the default MOS p5 >= 3.1, up to 5 %: were every late
# packet lost, a clean G.711 path would still read MOS 3.87 (E-model at 5 % random loss), far
# above 3.1, so the slip cannot make that verdict. Dead air and one-way audio are silences of
# a second or more, which 5 ms of send slip cannot make either.
DEFAULT_MOS_LATE_SHARE = 0.05


def rtp_late_limit(sla: dict, given: set[str]) -> float | None:
    """The share of late RTP packets beyond which the media verdicts are the generator's own:
    1 % for media targets the scenario sets itself, 5 % for the default MOS p5 alone, None
    when no media target is judged. `given`: the SLA keys the scenario (or game day) set."""
    judged = [k for k in MEDIA_TARGETS if sla.get(k) is not None]
    if any(k in given for k in judged):
        return RTP_LATE_SHARE
    return DEFAULT_MOS_LATE_SHARE if judged else None


def generator_problems(health: dict | None, workers_lost: dict | None = None,
                       sending: dict | None = None, late_limit: float | None = None) -> list[str]:
    """Why the load cannot be trusted (empty: it can). `sending`: the generator's RTP packets
    and how many left late (metrics/voice.py), weighed against `late_limit` (`rtp_late_limit`;
    None: no media target judged)."""
    out = []
    if late_limit is not None and sending and sending.get("packets"):
        late, n = sending["late"], sending["packets"]
        if late > late_limit * n:
            out.append(f"the load generator's RTP left late: {late} of {n} packets ({late / n:.1%}) "
                       f"more than 5 ms after their slot (limit {late_limit:.0%}); the media "
                       f"figures would be its own slip, not the hotline's")
    if health and health.get("offered"):
        behind = health["late"] + health["skipped"] + health["unplaced"]
        if behind > LATE_SHARE * health["offered"]:
            out.append(f"the load generator fell behind its schedule: {behind} of "
                       f"{health['offered']} offered calls ({behind / health['offered']:.0%}) left "
                       f"more than 100 ms late or not at all (limit {LATE_SHARE:.0%})")
    lag = (health or {}).get("loop_lag_p99")
    if lag is not None and lag > LOOP_LAG_P99:
        out.append(f"the load generator's event loop stalled: p99 {lag * 1000:.0f} ms "
                   f"(limit {LOOP_LAG_P99 * 1000:.0f} ms)")
    if workers_lost:
        out.append(f"load workers lost: {workers_lost['expected'] - workers_lost['reported']} of "
                   f"{workers_lost['expected']} never reported their calls")
    return out
