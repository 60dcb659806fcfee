"""Drill calendar (pure), run index, and the Prometheus text format."""
from harness.report import history, prometheus


DAY = 86400


NOW = 1_800_000_000.0


def entry(tag, days_ago, passed=True, aborted=False):
    return {"tags": [tag], "started_at": NOW - days_ago * DAY, "passed": passed, "aborted": aborted}


SUMMARY = {"scenario": {"name": "node-loss", "target": "sandbox", "tags": ["monthly-switchover"]},
           "run": {"started_at": NOW, "aborted": False}, "passed": False, "exit_code": 1,
           "verdicts": [{"target": "answer_rate", "passed": True, "measured": 0.95},
                        {"target": "failover_time", "passed": False, "measured": 42.5}],
           "counts": {"attempts": 10, "answered": 9, "failed": 1}}


def test_calendar_statuses():
    rows = {r.tag: r for r in history.calendar([
        entry("monthly-switchover", 10),                       # due in 21 days: ok
        entry("quarterly-dr", 88),                             # due in 4 days: due soon
        entry("surprise", 100), entry("surprise", 5, passed=False),  # last pass 100 days ago
    ], NOW)}
    assert rows["monthly-switchover"].status == "ok"
    assert rows["quarterly-dr"].status == "due soon"
    assert rows["surprise"].status == "overdue"
    assert rows["surprise"].last_run == NOW - 5 * DAY and rows["surprise"].last_passed == NOW - 100 * DAY
    extra = history.calendar([], NOW, {"weekly-failover": 7})
    assert {r.tag: r.status for r in extra}["weekly-failover"] == "never run"


def test_index_append_and_read(tmp_path):
    history.append(tmp_path / "index.jsonl", SUMMARY, tmp_path / "run1")
    (e,) = history.read(tmp_path / "index.jsonl")
    assert e["scenario"] == "node-loss" and e["failed_targets"] == ["failover_time"]


def test_exposition_lines():
    text = prometheus.exposition(SUMMARY)
    base = 'scenario="node-loss",target_system="sandbox"'
    assert f"hotline_drill_passed{{{base}}} 0" in text
    assert f'hotline_drill_sla_pass{{{base},sla="failover_time"}} 0' in text
    assert f'hotline_drill_sla_measured{{{base},sla="failover_time"}} 42.5' in text
    assert f'hotline_drill_calls{{{base},outcome="failed"}} 1' in text
    assert text.count("# TYPE") == 6
    assert f"hotline_drill_inconclusive{{{base}}} 0" in text


def test_textfile_and_push_to_a_local_gateway(tmp_path, http_sink):
    path = prometheus.write_textfile(SUMMARY, tmp_path / "textfile")
    assert path.name == "hotline_drill_node_loss.prom" and "hotline_drill_passed" in path.read_text()
    url, got = http_sink
    status = prometheus.push(SUMMARY, url)
    assert status == 204 and len(got) == 1 and got[0]["method"] == "PUT"
    assert got[0]["path"] == "/metrics/job/hotline_drill/scenario/node-loss"
    assert got[0]["body"] == prometheus.exposition(SUMMARY)


def test_exposition_has_mos_per_carrier_with_calls():
    voice = {"per_carrier": {"carrier-a": {"calls": 3, "mos_p5": 3.31, "mos_p50": 4.2},
                             "carrier-b": {"calls": 0, "mos_p5": None, "mos_p50": None}}}
    text = prometheus.exposition({**SUMMARY, "voice": voice})
    base = 'scenario="node-loss",target_system="sandbox"'
    assert f'hotline_drill_mos{{{base},carrier="carrier-a",quantile="0.05"}} 3.31' in text
    assert f'hotline_drill_mos{{{base},carrier="carrier-a",quantile="0.5"}} 4.2' in text
    assert "carrier-b" not in text and text.count("# TYPE") == 7
