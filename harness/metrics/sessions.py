"""RFC 6076 SIP end-to-end performance metrics, and ASR/NER as operators use them. Pure.

Over the INVITEs a drill placed (one call record each), as the RFC defines them:
  SRD  session request delay (§4.1): INVITE sent -> first 18x, or the final
       response when none came; successful (answered) and failed apart;
  SDD  session disconnect delay (§4.2): BYE sent -> its final response;
  SDT  session duration time (§4.3): 200 OK of the INVITE -> BYE sent;
  SER  session establishment ratio (§4.6): 200 / (INVITEs - 3xx);
  SEER session establishment effectiveness ratio (§4.7):
       (200, 480, 486, 600, 603) / (INVITEs - 3xx);
  ISA  ineffective session attempts (§4.8): (408, 500, 503, 504, and no final
       response at all, which a UA reports as a local 408) / INVITEs;
  SCR  session completion ratio (§4.9): sessions that set up and ended with a
       BYE answered 200 / INVITEs.
ASR (answer seizure ratio, ITU-T E.411): answered / attempts. NER (network
effectiveness ratio, E.411 and GSMA IR.42): attempts that ended in an answer
or a user's decision (busy, no answer, rejection) / attempts; every other
outcome is network-ineffective (NETWORK_INEFFECTIVE below).
"""
from __future__ import annotations

from harness.metrics.records import CallRecord
from harness.metrics.calls import percentile

SEER_OK = frozenset({200, 480, 486, 600, 603})
ISA_CODES = frozenset({0, 408, 500, 503, 504})  # 0: no final response (timeout)
# outcomes decided by the called user, not the network: answered, temporarily unavailable
# (no answer), busy here, request terminated (the caller gave up ringing), busy everywhere,
# declined
USER_DETERMINED = frozenset({480, 486, 487, 600, 603})
NETWORK_INEFFECTIVE = ("no final response, 408, every 5xx, and any 4xx/6xx other than "
                       "480, 486, 487, 600, 603")


def _final(r: CallRecord) -> int:
    return 200 if r.answered else r.status


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "mean": None, "p95": None}
    return {"n": len(values), "mean": round(sum(values) / len(values), 4),
            "p95": round(percentile(values, 95), 4)}


def session_metrics(records: list[CallRecord]) -> dict:
    """The RFC 6076 figures (ratios 0..1, times in seconds) of a set of call attempts."""
    total = len(records)
    finals = [_final(r) for r in records]
    redirected = sum(1 for f in finals if 300 <= f < 400)
    base = total - redirected
    answered = sum(1 for r in records if r.answered)
    srd_ok = [r.pdd for r in records if r.answered and r.pdd is not None]
    srd_failed = [r.ended_at - r.started_at for r, f in zip(records, finals)
                  if not r.answered and f >= 300 and r.ended_at and r.started_at]
    sdd = [r.ended_at - r.bye_sent_at for r in records
           if r.bye_sent_at and r.ended_at and r.bye_status]
    sdt = [r.bye_sent_at - r.answered_at for r in records
           if r.outcome == "completed" and r.bye_sent_at and r.answered_at]
    return {
        "attempts": total,
        "srd": _stats(srd_ok), "srd_failed": _stats(srd_failed),
        "sdd": _stats(sdd), "sdt": _stats(sdt),
        "ser": _ratio(answered, base),
        "seer": _ratio(sum(1 for f in finals if f in SEER_OK), base),
        "isa": _ratio(sum(1 for f in finals if f in ISA_CODES), total),
        "scr": _ratio(sum(1 for r in records if r.outcome == "completed"), total),
        "asr": _ratio(answered, total),
        "ner": _ratio(sum(1 for f in finals if 200 <= f < 300 or f in USER_DETERMINED), total),
    }
