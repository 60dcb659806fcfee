"""The SIPp engine's log lines as call records, and its UAC scenario: pure."""
import pytest
from harness.scenario.model import LoadSpec


def test_sipp_log_lines_become_call_records():
    from harness.load.sipp_engine import LogReader, scenario_xml
    r = LogReader("carrier-a", 2.0, node_of=lambda c: {"sip:pbx-1@127.0.0.1:5060": "pbx-1"}.get(c, c))
    assert r.line("start|1-1@h|1000.000000|250000.000000") is None
    assert r.line("start|2-1@h|1001.000000|0.000000") is None
    assert r.line("start|3-1@h|1002.000000|0.000000") is None
    ok = r.line("end|1-1@h|completed|200|1000.000000|300000.000000|1000.000000|350000.000000|"
                "1002.000000|350000.000000|1002.000000|360000.000000|sip:pbx-1@127.0.0.1:5060")
    assert (ok.outcome, ok.node, ok.status, ok.bye_status) == ("completed", "pbx-1", 200, 200)
    assert ok.started_at == 1000.25 and ok.pdd == pytest.approx(0.05) and ok.answered
    busy = r.line("end|2-1@h|failed|503.000000|||0|0|0|0|1001.000000|100000.000000|-")
    assert (busy.outcome, busy.status, busy.answered, busy.ringing_at) == ("failed", 503, False, None)
    left = r.leftovers()  # started, never ended in SIPp's log: failed
    assert [(c.call_id, c.outcome) for c in left] == [("3-1@h", "failed")] and r.starts == {}
    xml = scenario_xml(LoadSpec(engine="sipp", hold="3s", invite_timeout="4s"))
    assert '<pause milliseconds="3000"/>' in xml and 'timeout="4000" ontimeout="timedout"' in xml


def test_sipp_marks_challenged_calls_and_refused_credentials():
    from harness.load.sipp_engine import LogReader, scenario_xml
    r = LogReader("carrier-a", 1.0, node_of=lambda c: c)
    ok = r.line("end|1@h|completed|200|1.000000|0.000000|1.000000|100000.000000|2.000000|0|"
                "2.000000|1000.000000|sip:pbx-1@h|1.000000")
    assert ok.challenged and ok.cause == "" and ok.outcome == "completed"
    refused = r.line("end|2@h|failed|407.000000|0|0|0|0|0|0|3.000000|0|-|1.000000")
    assert (refused.challenged, refused.cause, refused.status) == (True, "auth", 407)
    assert "credentials refused" in refused.reason
    unanswered = r.line("end|3@h|failed|407.000000|0|0|0|0|0|0|3.000000|0|-|0.000000")
    assert unanswered.cause == "auth" and "no credentials" in unanswered.reason
    # the password goes into the scenario only where it is asked for
    xml = scenario_xml(LoadSpec(engine="sipp"), ("trunk", "s3cret"))
    assert "[authentication username=trunk password=s3cret]" in xml and 'auth="true"' in xml
    assert "s3cret" not in scenario_xml(LoadSpec(engine="sipp")) and \
        'auth="true"' not in scenario_xml(LoadSpec(engine="sipp"))
