"""The ITU-T G.107 E-model: a transmission rating R, and the MOS it predicts. Pure.

Equations from ITU-T Rec. G.107 (06/2015) §7: R = Ro - Is - Id - Ie,eff + A
(eq. 7-1), with every parameter at its default (Table 3) unless given: the
basic signal-to-noise ratio Ro (7-2 to 7-7), the simultaneous impairments Is
(7-8 to 7-14), the delay impairments Id = Idte + Idle + Idd (7-15 to 7-27),
the effective equipment impairment Ie,eff (7-29) and the MOS of a rating
(Annex B, B-4). With every default, R = 93.2 (§7.7).

G.711 figures from ITU-T Rec. G.113 Appendix I, Table I.3: Ie = 0, and the
packet-loss robustness Bpl = 25.1 with packet loss concealment (4.3 without).
Ppl is the packet-loss percentage and BurstR the burst ratio (1 for random
loss, above 1 for bursty loss), both from a call's own loss pattern.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

BPL_G711_PLC = 25.1
BPL_G711 = 4.3


@dataclass(frozen=True)
class Defaults:
    """G.107 Table 3 default values (dB, dBmC, dB(A), ms)."""

    SLR: float = 8.0
    RLR: float = 2.0
    STMR: float = 15.0
    LSTR: float = 18.0
    Ds: float = 3.0
    Dr: float = 3.0
    TELR: float = 65.0
    WEPL: float = 110.0
    Nc: float = -70.0
    Nfor: float = -64.0
    Ps: float = 35.0
    Pr: float = 35.0
    qdu: float = 1.0
    A: float = 0.0


D = Defaults()


def _db_sum(*levels: float) -> float:
    return 10 * math.log10(sum(10 ** (x / 10) for x in levels))


def ro_and_no(d: Defaults = D) -> tuple[float, float]:
    """Basic signal-to-noise ratio Ro and total noise No (eq. 7-2 to 7-7)."""
    olr = d.SLR + d.RLR
    nos = d.Ps - d.SLR - d.Ds - 100 + 0.004 * (d.Ps - olr - d.Ds - 14) ** 2
    pre = d.Pr + 10 * math.log10(1 + 10 ** ((10 - d.LSTR) / 10))
    nor = d.RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = d.Nfor + d.RLR
    no = _db_sum(d.Nc, nos, nor, nfo)
    return 15 - 1.5 * (d.SLR + no), no


def simultaneous_impairment(t_ms: float, d: Defaults = D) -> float:
    """Is = Iolr + Ist + Iq (eq. 7-8 to 7-14)."""
    ro, no = ro_and_no(d)
    olr = d.SLR + d.RLR
    xolr = olr + 0.2 * (64 + no - d.RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * math.log10(10 ** (-d.STMR / 10) + math.exp(-t_ms / 4) * 10 ** (-d.TELR / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
           - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)
    q = 37 - 15 * math.log10(d.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q ** 2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * math.log10(1 + 10 ** y + 10 ** z)
    return iolr + ist + iq


def delay_impairment(t_ms: float, ta_ms: float, tr_ms: float, d: Defaults = D) -> float:
    """Id = Idte + Idle + Idd (eq. 7-15 to 7-27): talker echo, listener echo, absolute delay."""
    ro, no = ro_and_no(d)
    terv = d.TELR - 40 * math.log10((1 + t_ms / 10) / (1 + t_ms / 150)) + 6 * math.exp(-0.3 * t_ms ** 2)
    roe = -1.5 * (no - d.RLR)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t_ms))
    rle = 10.5 * (d.WEPL + 7) * (tr_ms + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if ta_ms <= 100:
        idd = 0.0
    else:
        x = math.log10(ta_ms / 100) / math.log10(2)
        idd = 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def effective_equipment_impairment(ppl: float, burst_r: float = 1.0, ie: float = 0.0,
                                   bpl: float = BPL_G711_PLC) -> float:
    """Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)  (eq. 7-29); Ppl in percent."""
    if ppl <= 0:
        return ie
    return ie + (95 - ie) * ppl / (ppl / max(burst_r, 1e-6) + bpl)


def rating(ppl: float = 0.0, burst_r: float = 1.0, ta_ms: float = 0.0, ie: float = 0.0,
           bpl: float = BPL_G711_PLC, d: Defaults = D) -> float:
    """R for a one-way mouth-to-ear delay `ta_ms` (T = Ta, Tr = 2 Ta: the usual assumption
    when echo paths are not measured separately) and a loss of `ppl` percent."""
    ro, _ = ro_and_no(d)
    return (ro - simultaneous_impairment(ta_ms, d) - delay_impairment(ta_ms, ta_ms, 2 * ta_ms, d)
            - effective_equipment_impairment(ppl, burst_r, ie, bpl) + d.A)


def mos(r: float) -> float:
    """G.107 Annex B (eq. B-4): the estimated mean opinion score of a rating R. The cubic
    dips a hair below 1 for R under about 6.5; a score is never below the scale's 1."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def burst_ratio(received: int, lost: int, bursts: int) -> float:
    """BurstR = 1 / (p + q) of the two-state loss model fitted to a stream (G.107 Appendix I
    of G.113's definition): p = P(loss | previous packet received) ~ bursts / received,
    q = P(received | previous lost) ~ bursts / lost. 1 when nothing or everything was lost."""
    if lost <= 0 or received <= 0 or bursts <= 0:
        return 1.0
    p, q = bursts / received, min(1.0, bursts / lost)
    return 1 / (p + q)
