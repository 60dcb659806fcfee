"""The resilience score on histories computed by hand (the formula is in score.py and README)."""
import pytest

from harness.report.score import (DAY, categories_of, freshness, result_of, score_target,
                                  trend)

NOW = 1_800_000_000.0


def run(scenario, days_ago, passed=True, tags=(), types=(), target="hotline", exit_code=None,
        aborted=False):
    code = exit_code if exit_code is not None else (0 if passed else 1)
    return {"scenario": scenario, "target": target, "tags": list(tags), "fault_types": list(types),
            "started_at": NOW - days_ago * DAY, "passed": passed, "aborted": aborted,
            "exit_code": code}


def by_category(score):
    return {c.category: round(c.score, 6) for c in score.categories}


def test_results_are_worth_their_points_and_bad_input_is_not_counted():
    assert result_of(run("a", 1)) == "passed"
    assert result_of(run("a", 1, passed=False)) == "failed"
    assert result_of(run("a", 1, passed=False, exit_code=3, aborted=True)) == "aborted"
    assert result_of(run("a", 1, passed=False, exit_code=4)) == "inconclusive"
    assert result_of(run("a", 1, passed=False, exit_code=2)) is None


def test_a_result_keeps_its_worth_for_the_cadence_then_fades_to_nothing_at_twice_it():
    assert freshness(0, 31) == freshness(31, 31) == 1.0
    assert freshness(46.5, 31) == pytest.approx(0.5)
    assert freshness(62, 31) == freshness(400, 31) == 0.0


def test_categories_come_from_tags_and_fault_types():
    assert categories_of(run("x", 1, tags=["monthly-switchover", "surge"])) == {"node loss", "surge"}
    assert categories_of(run("x", 1, types=["net.cut"])) == {"carrier"}
    assert categories_of(run("x", 1, tags=["lab-dr"], types=["docker.kill"])) == {"dr", "node loss"}
    assert categories_of(run("x", 1, tags=["security"], types=["sipflood.scan"])) == {"security"}
    assert categories_of(run("x", 1, tags=["contact-centre"])) == {"journey"}
    assert categories_of(run("x", 1, tags=["baseline"])) == set()


def test_a_hand_computed_history():
    """node loss: kill-pbx passed 10 days ago (100), pause-pbx failed 40 days ago (50 × (1 -
    9/31) = 35.483871) -> 67.741935; carrier: cut passed 5 days ago, but its latest run,
    2 days ago, was inconclusive (25) -> 25; dr: site-loss aborted 100 days ago (50 × (1 - 8/92)
    = 45.652174) -> 45.652174; surge, security, journey: never run -> 0.
    Target: (67.741935 + 25 + 45.652174) / 6 = 23.065685."""
    history = [run("kill-pbx", 10, tags=["monthly-switchover"], types=["process.kill"]),
               run("pause-pbx", 40, passed=False, types=["process.pause"]),
               run("cut", 5, types=["net.cut"]),
               run("cut", 2, passed=False, exit_code=4, types=["net.cut"]),
               run("site-loss", 100, passed=False, aborted=True, exit_code=3, tags=["quarterly-dr"]),
               run("typo", 1, passed=False, exit_code=2, types=["net.cut"]),
               run("kill-pbx", 1, target="other", passed=False, types=["process.kill"])]
    s = score_target(history, "hotline", NOW)
    assert by_category(s) == {"node loss": pytest.approx(67.741935), "carrier": 25.0,
                              "dr": pytest.approx(45.652174), "surge": 0.0, "security": 0.0,
                              "journey": 0.0}
    assert s.score == pytest.approx(23.065685)
    assert [c.status for c in s.categories][-1] == "not run"
    # asked for the three core categories only
    assert score_target(history, "hotline", NOW, ["node loss", "carrier", "dr"]).score == \
        pytest.approx((67.741935 + 25 + 45.652174) / 3)
    # the other target is scored on its own runs alone: a failed node loss, 1 day old
    assert by_category(score_target(history, "other", NOW))["node loss"] == 50.0


def test_the_score_before_a_run_does_not_see_it_and_the_trend_shows_the_change():
    history = [run("kill-pbx", 20, passed=False, types=["process.kill"]),
               run("kill-pbx", 3, types=["process.kill"])]
    cats = ["node loss"]
    assert score_target(history, "hotline", NOW - 10 * DAY, cats).score == 50.0
    assert score_target(history, "hotline", NOW, cats).score == 100.0
    points = trend(history, "hotline", NOW, weeks=4, categories=cats)
    assert [round(t) for t, _ in points] == [round(NOW - k * 7 * DAY) for k in (3, 2, 1, 0)]
    assert [s for _, s in points] == [0.0, 50.0, 50.0, 100.0]  # 21 days ago: not yet run


def test_an_unknown_category_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown category nodes.*node loss"):
        score_target([], "hotline", NOW, ["nodes"])


def test_drill_score_reads_the_history_and_prints_the_hand_computed_figures(tmp_path):
    """`drill score` on an index.jsonl written by hand: node loss passed 10 days ago (100),
    carrier failed 50 days ago (50 × (1 - 19/31) = 19.354839); asked for those two: 59.7."""
    import json
    import time

    from typer.testing import CliRunner

    from harness.cli import app
    now = time.time()
    rows = [{"run_dir": "r1", "scenario": "kill", "target": "hotline", "tags": [],
             "fault_types": ["process.kill"], "started_at": now - 10 * DAY, "passed": True,
             "aborted": False, "exit_code": 0, "failed_targets": []},
            {"run_dir": "r2", "scenario": "cut", "target": "hotline", "tags": ["carrier"],
             "fault_types": [], "started_at": now - 50 * DAY, "passed": False,
             "aborted": False, "exit_code": 1, "failed_targets": ["answer_rate"]}]
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["score", "--reports", str(tmp_path), "--json", "--category",
                                   "node loss", "--category", "carrier", "--weeks", "3"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["score"] == pytest.approx(59.7, abs=0.05)
    assert got["categories"] == {"node loss": {"score": 100.0, "scenarios": 1},
                                 "carrier": {"score": pytest.approx(19.4), "scenarios": 1}}
    # two weeks ago the node-loss drill had not run: carrier alone, 36 days old
    assert got["trend"][0][1] == pytest.approx(50 * (1 - 5 / 31) / 2, abs=0.05)
    res = CliRunner().invoke(app, ["score", "--reports", str(tmp_path)])
    # all six categories by default: (100 + 19.35) / 6
    assert res.exit_code == 0 and "hotline: 20 / 100" in res.output, res.output
    assert "not run" in res.output
    bad = CliRunner().invoke(app, ["score", "--reports", str(tmp_path), "--category", "nodes"])
    assert bad.exit_code == 2 and "unknown category nodes" in bad.output
