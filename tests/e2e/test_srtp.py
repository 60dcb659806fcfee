"""SRTP with SDES keys (RFC 3711, RFC 4568) through the sandbox SBC, which ends it towards the
carriers as an SBC does (the PBX nodes get RTP): calls heard both ways with the same figures as
plain RTP, an entry point that requires SRTP refusing a plain answer, and a key mismatch read as
authentication failures, named, not as silence or loss."""
import json
import sys
from dataclasses import replace

from harness.lab import sandbox
from harness.load.entry_calls import call_options
from harness.metrics.voice import voice_report
from harness.runner.steady import Lasting, call_problem
from harness.sip.uac import place_call

DRILL = [sys.executable, "-m", "harness.cli"]


def _calls(entry, n=3, hold=1.0, **more):
    opts = call_options(entry, hold=hold, rtp=True, invite_timeout=4, bye_timeout=2)
    return [place_call(entry.addr, replace(opts, **more), entry.name) for _ in range(n)]


def test_srtp_calls_are_heard_both_ways_through_the_sbc(isolated):
    inv = sandbox.up(sandbox.SandboxConfig(srtp="on", tls=True, auth=True))
    by = {e.name: e for e in inv.entry_points}
    assert {e.srtp for e in inv.entry_points} == {"require"}
    recs = _calls(by["carrier-a"]) + _calls(by["carrier-tls"])
    assert [r.outcome for r in recs] == ["completed"] * 6, [r.reason for r in recs]
    for r in recs:
        assert r.srtp and r.srtp_auth_failed == 0
        # every packet of the SBC's read with the SBC's answered key, and the PBX read ours:
        # its receiver reports (in the payload the SBC decrypted) came back with our stamps
        assert r.rtp_received >= r.rtp_expected - 2 > 40, r
        assert r.rtp_up_received >= r.rtp_up_expected - 2 > 40, r
        assert r.rtp_rtt_ms is not None and r.rtp_rtt_ms < 100
    # best effort (srtp: offer) gets SRTP from this SBC too; a plain caller gets plain RTP
    offer = _calls(by["carrier-b"], n=1, srtp="offer")[0]
    plain = _calls(by["carrier-b"], n=1, srtp="off")[0]
    assert offer.srtp and offer.rtp_received > 40
    assert not plain.srtp and plain.rtp_received > 40 and plain.rtp_rtt_ms is not None
    sandbox.down()
    stats = json.loads((sandbox.SandboxConfig().folder / "sbc.stats.json").read_text())
    assert stats["_srtp"] == {"calls": 7, "auth_failed": 0}  # the SBC's own count


def test_an_entry_point_that_requires_srtp_refuses_a_plain_answer(isolated):
    inv = sandbox.up()  # an SBC that passes the offer on: the PBX answers RTP/AVP, no key
    entry = inv.entry_points[0].model_copy(update={"srtp": "require"})
    rec = _calls(entry, n=1)[0]
    assert rec.outcome == "failed" and rec.cause == "srtp" and rec.answered, rec
    assert "answered without SRTP" in rec.reason
    problem = call_problem(entry)
    assert isinstance(problem, Lasting) and "srtp: require" in problem  # exit 2, named
    # the same hotline with srtp: offer: a plain call, as best effort allows
    best = _calls(entry.model_copy(update={"srtp": "offer"}), n=1)[0]
    assert best.outcome == "completed" and not best.srtp and best.rtp_received > 40


def test_a_key_mismatch_reads_as_srtp_authentication_failures(isolated):
    inv = sandbox.up(sandbox.SandboxConfig(srtp="wrong-key"))
    entry = inv.entry_points[0]
    recs = _calls(entry, n=4)
    for r in recs:
        # the call stayed up and the SBC's packets came: every one failed authentication
        assert r.outcome == "completed" and r.srtp and r.rtp_received == 0, r
        assert r.srtp_auth_failed >= r.rtp_expected - 2 > 40, r
        assert r.reason.startswith("no audio: SRTP authentication failed")
    overall = voice_report(recs, [])["overall"]
    # named for what it is: not dead air, not loss
    assert overall["srtp_failed"] == 4 and overall["dead_air"] == 0 and overall["loss_down"] == 0
    problem = call_problem(entry)
    assert isinstance(problem, Lasting) and "SRTP authentication failed" in problem
