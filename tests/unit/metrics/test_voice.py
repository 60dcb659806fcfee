"""E-model (G.107), per-call voice figures and RFC 6076 session metrics, against published
values and hand-worked cases."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from harness.metrics import emodel
from harness.metrics.records import CallRecord, FaultWindow
from harness.metrics.sessions import session_metrics
from harness.metrics.voice import DEVICE_DELAY_MS, call_voice, voice_report


def test_all_defaults_give_r_93_2():
    # G.107 §7.7: with every parameter at its default, R = 93.2
    assert emodel.rating() == pytest.approx(93.2, abs=0.05)


@pytest.mark.parametrize("r, expected", [(90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10),
                                         (50, 2.58), (93.2, 4.41)])
def test_mos_of_r_matches_g107_table_b1(r, expected):
    # G.107 Annex B, Table B.1: R 90/80/70/60/50 -> MOS 4.34/4.03/3.60/3.10/2.58 (as printed,
    # to two places: 4.024 is printed 4.03)
    assert emodel.mos(r) == pytest.approx(expected, abs=0.0075)


def test_mos_bounds():
    assert emodel.mos(-5) == 1.0 and emodel.mos(0) == 1.0 and emodel.mos(120) == 4.5


@pytest.mark.parametrize("ppl, burst_r, bpl, expected", [
    (1, 1, emodel.BPL_G711_PLC, 95 * 1 / (1 + 25.1)),   # G.711 with PLC, random loss
    (2, 1, emodel.BPL_G711, 95 * 2 / (2 + 4.3)),        # G.711 without PLC
    (5, 2, emodel.BPL_G711_PLC, 95 * 5 / (2.5 + 25.1)),  # bursty loss hurts more
    (0, 3, emodel.BPL_G711_PLC, 0.0)])
def test_effective_equipment_impairment(ppl, burst_r, bpl, expected):
    assert emodel.effective_equipment_impairment(ppl, burst_r, bpl=bpl) == pytest.approx(expected)


def test_delay_impairment_against_the_published_approximation():
    # Cole & Rosenbluth (2001) fit of the default E-model: Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)
    for d in range(0, 301, 25):
        approx = 93.2 - (0.024 * d + 0.11 * max(0.0, d - 177.3))
        assert emodel.rating(ta_ms=d) == pytest.approx(approx, abs=1.0), d


def test_no_absolute_delay_impairment_up_to_100_ms():
    # eq. 7-27: Idd = 0 for Ta <= 100 ms; only the echo terms move R there
    assert emodel.rating(ta_ms=100) > emodel.rating(ta_ms=101) > emodel.rating(ta_ms=200)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 40), st.floats(0.01, 10), st.floats(0, 500))
def test_mos_falls_as_loss_and_delay_rise(ppl, extra, ta):
    r = emodel.rating(ppl=ppl, ta_ms=ta)
    assert emodel.rating(ppl=ppl + extra, ta_ms=ta) < r
    assert emodel.rating(ppl=ppl, ta_ms=ta + 50) < r
    assert 1.0 <= emodel.mos(r) <= 4.5


def test_burst_ratio_of_random_and_bursty_loss():
    assert emodel.burst_ratio(900, 100, 90) == pytest.approx(1 / (0.1 + 0.9))
    # 100 lost in 10 runs of 10: q = 0.1, p = 10/900
    assert emodel.burst_ratio(900, 100, 10) == pytest.approx(1 / (10 / 900 + 0.1))
    assert emodel.burst_ratio(1000, 0, 0) == 1.0


def _call(**kw) -> CallRecord:
    base = dict(call_id="c1", carrier="carrier-a", started_at=100.0, ringing_at=100.02,
                answered_at=100.05, bye_sent_at=110.05, ended_at=110.06, outcome="completed",
                status=200, bye_status=200, hold_planned=10, media=True, rtp_sent=500,
                rtp_expected=500, rtp_received=500, rtp_up_expected=500, rtp_up_received=500,
                rtp_rtt_ms=2.0)
    base.update(kw)
    return CallRecord(**base)


def test_call_voice_each_direction_and_the_worse_one():
    v = call_voice(_call(rtp_received=450, rtp_bursts=45, rtp_up_received=490, rtp_up_bursts=10))
    ta = 1.0 + DEVICE_DELAY_MS
    assert v.loss_down == pytest.approx(0.10) and v.loss_up == pytest.approx(0.02)
    assert v.mos_down == pytest.approx(emodel.mos(emodel.rating(
        ppl=10, burst_r=emodel.burst_ratio(450, 50, 45), ta_ms=ta)))
    assert v.mos == v.mos_down < v.mos_up


def test_echo_only_far_end_splits_round_trip_loss():
    v = call_voice(_call(rtp_echo=True, rtp_received=405, rtp_up_expected=0, rtp_up_received=0))
    # 81 % came back: 10 % lost each way
    assert v.loss_down == pytest.approx(0.10, abs=0.002) and v.loss_up == v.loss_down


def test_calls_without_media_have_no_voice():
    assert call_voice(_call(media=False)) is None
    assert call_voice(_call(answered_at=None, outcome="failed")) is None


def test_voice_report_per_carrier_and_fault_window():
    clean = [_call(call_id=f"a{i}") for i in range(10)]
    lossy = [_call(call_id=f"b{i}", carrier="carrier-b", rtp_received=400, rtp_bursts=90,
                   started_at=200, answered_at=200.05, bye_sent_at=210, ended_at=210.01)
             for i in range(10)]
    w = FaultWindow("loss-b", "udp.loss", "carrier-b", started_at=199, ended_at=215)
    rep = voice_report(clean + lossy, [w])
    assert rep["per_carrier"]["carrier-a"]["loss_down"] == 0
    assert rep["per_carrier"]["carrier-b"]["loss_down"] == pytest.approx(0.2)
    assert rep["per_carrier"]["carrier-b"]["mos_p50"] < rep["per_carrier"]["carrier-a"]["mos_p5"]
    assert rep["per_fault"]["loss-b"]["calls"] == 10
    assert rep["overall"]["packets_down"] == 10000


def test_rfc6076_ratios_over_known_outcomes():
    recs = ([_call(call_id=f"ok{i}") for i in range(6)]
            + [_call(call_id="drop", outcome="dropped", bye_status=0)]
            + [CallRecord(call_id="busy", started_at=1, ended_at=1.1, status=486)]
            + [CallRecord(call_id="503", started_at=1, ended_at=1.2, status=503)]
            + [CallRecord(call_id="timeout", started_at=1, ended_at=9, status=0)]
            + [CallRecord(call_id="moved", started_at=1, ended_at=1.1, status=302)])
    m = session_metrics(recs)
    assert m["attempts"] == 11
    assert m["ser"] == pytest.approx(7 / 10)          # 3xx left out of the base
    assert m["seer"] == pytest.approx(8 / 10)         # + 486
    assert m["isa"] == pytest.approx(2 / 11)          # 503 and the timeout
    assert m["scr"] == pytest.approx(6 / 11)          # the dropped call did not complete
    assert m["asr"] == pytest.approx(7 / 11)
    assert m["ner"] == pytest.approx(8 / 11)          # answered + busy
    assert m["srd"]["n"] == 7 and m["srd"]["p95"] == pytest.approx(0.02)
    assert m["srd_failed"]["n"] == 3                  # 486, 503, 302 answered with a final
    assert m["sdd"]["n"] == 6 and m["sdd"]["mean"] == pytest.approx(0.01)
    assert m["sdt"]["mean"] == pytest.approx(10.0)


def test_rfc6076_of_nothing():
    m = session_metrics([])
    assert m["ser"] is None and m["srd"]["n"] == 0 and not math.isnan(m["attempts"])


def test_late_rtp_makes_media_figures_inconclusive_only_when_judged():
    from harness.metrics.generator import generator_problems
    fine = {"packets": 10000, "late": 100}     # 1 %: the limit, not over it
    slipped = {"packets": 10000, "late": 101}
    assert generator_problems(None, None, fine, late_limit=0.01) == []
    assert "RTP left late: 101 of 10000" in generator_problems(None, None, slipped, 0.01)[0]
    assert generator_problems(None, None, slipped, late_limit=None) == []
    # the limit: 1 % for a media target the scenario sets, 5 % for the default MOS p5 alone
    from harness.metrics.generator import rtp_late_limit
    assert rtp_late_limit({"mos_p5": 3.1}, set()) == 0.05
    assert rtp_late_limit({"mos_p5": 3.1}, {"mos_p5"}) == 0.01
    assert rtp_late_limit({"mos_p5": 3.1, "media_loss": 0.01}, {"media_loss"}) == 0.01
    assert rtp_late_limit({"mos_p5": None}, {"mos_p5"}) is None
    assert generator_problems(None, None, slipped, rtp_late_limit({"mos_p5": 3.1}, set())) == []


def test_voice_report_counts_the_generators_own_late_packets():
    recs = [_call(call_id="x", rtp_send_late=7), _call(call_id="y", rtp_send_late=3)]
    assert voice_report(recs, [])["sending"] == {"packets": 1000, "late": 10}


def test_dead_air_and_one_way_audio_are_judged_by_default_and_name_the_silent_node():
    # the case: a PBX that answers every second call and never sends RTP back. The
    # caller hears nothing on pbx-2's calls (the far end's reports say it heard the caller:
    # one-way audio too); MOS alone read 1.15 and passed, since no target judged it
    from harness.metrics.evaluate import evaluate
    recs = []
    for i in range(40):
        silent = i % 2 == 1
        recs.append(_call(call_id=f"c{i}", node="pbx-2" if silent else "pbx-1",
                          started_at=100.0 + i, answered_at=100.05 + i, ringing_at=100.02 + i,
                          bye_sent_at=110.05 + i, ended_at=110.06 + i,
                          rtp_received=0 if silent else 500, rtp_max_gap=10.0 if silent else 0.02))
    out = evaluate(recs, [], {"mos_p5": 3.1, "dead_air": 0.01, "one_way_audio": 0.01},
                   max_gap=1.0, alarm_window=10, run_start=100, run_end=150,
                   steady_state_after=True)
    v = {x["target"]: x for x in out["verdicts"]}
    assert v["dead_air"]["measured"] == pytest.approx(0.5) and not v["dead_air"]["passed"]
    assert "pbx-2: 20 of 20" in v["dead_air"]["detail"] and "pbx-1" not in v["dead_air"]["detail"]
    assert v["one_way_audio"]["measured"] == pytest.approx(0.5)
    assert not v["mos_p5"]["passed"] and not out["passed"]
    nodes = out["voice"]["per_node"]
    assert nodes["pbx-2"]["dead_air"] == 20 and nodes["pbx-1"]["dead_air"] == 0
    assert nodes["pbx-1"]["mos_p5"] > 4.0


def test_audio_that_stops_longer_than_the_media_gap_is_dead_air_and_shorter_is_not():
    # both sides of the gap: 1.05 s without a packet is dead air at media_gap 1 s, 0.95 s not
    long, short = _call(rtp_max_gap=1.05), _call(rtp_max_gap=0.95)
    assert call_voice(long, max_gap=1.0).dead_air and not call_voice(short, max_gap=1.0).dead_air
    # a far end that only echoes: both ways or neither, never one-way
    echo = _call(rtp_echo=True, rtp_up_expected=0, rtp_up_received=0, rtp_received=0,
                 rtp_max_gap=10.0)
    assert call_voice(echo).dead_air and not call_voice(echo).one_way
    # the hotline heard nothing of the caller while the caller heard it: one-way
    deaf = _call(rtp_up_received=0)
    assert call_voice(deaf).one_way and not call_voice(deaf).dead_air


def test_an_srtp_key_mismatch_is_named_not_dead_air_nor_loss():
    # pbx-2's SBC sends with a key other than the one it answered: its packets all came (500)
    # and every one failed authentication. The caller heard nothing (MOS says so), but the
    # network lost none and nobody was silent: srtp_failed names it, judged by default
    from harness.metrics.evaluate import evaluate
    recs = []
    for i in range(40):
        bad = i % 2 == 1
        recs.append(_call(call_id=f"c{i}", node="pbx-2" if bad else "pbx-1", srtp=True,
                          started_at=100.0 + i, answered_at=100.05 + i, ringing_at=100.02 + i,
                          bye_sent_at=110.05 + i, ended_at=110.06 + i,
                          rtp_received=0 if bad else 500, srtp_auth_failed=500 if bad else 0,
                          rtp_max_gap=10.0 if bad else 0.02))
    out = evaluate(recs, [], {"srtp_failed": 0.01, "dead_air": 0.01},
                   max_gap=1.0, alarm_window=10, run_start=100, run_end=150,
                   steady_state_after=True)
    v = {x["target"]: x for x in out["verdicts"]}
    assert v["srtp_failed"]["measured"] == pytest.approx(0.5) and not v["srtp_failed"]["passed"]
    assert "pbx-2: 20 of 20" in v["srtp_failed"]["detail"]
    assert v["dead_air"]["measured"] == 0 and v["dead_air"]["passed"]
    overall = out["voice"]["overall"]
    assert overall["loss_down"] == 0 and overall["srtp_failed_packets"] == 20 * 500
    assert out["voice"]["per_node"]["pbx-2"]["mos_p50"] < 1.5
    # a drill with no SRTP call has nothing for this target to judge: it passes, saying so
    plain = evaluate([_call(call_id="p")], [], {"srtp_failed": 0.01}, max_gap=1.0,
                     alarm_window=10, run_start=100, run_end=150, steady_state_after=True)
    (only,) = [x for x in plain["verdicts"] if x["target"] == "srtp_failed"]
    assert only["passed"] and only["measured"] is None and "no call with SRTP" in only["detail"]


def test_srtp_failed_is_judged_where_the_calls_carry_srtp():
    """Its default (1 %) where the run's calls were SRTP; no line for it elsewhere; a
    scenario's own value or null kept (the report decides from the calls, so `drill report`
    on a run folder decides the same)."""
    from harness.metrics.sla import where_judged
    srtp, plain = [_call(srtp=True)], [_call()]
    assert where_judged({"srtp_failed": None}, set(), srtp)["srtp_failed"] == 0.01
    assert where_judged({"srtp_failed": None}, set(), plain)["srtp_failed"] is None
    assert where_judged({"srtp_failed": None}, {"srtp_failed"}, srtp)["srtp_failed"] is None
    assert where_judged({"srtp_failed": 0.05}, {"srtp_failed"}, srtp)["srtp_failed"] == 0.05
