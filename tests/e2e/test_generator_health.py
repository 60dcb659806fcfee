"""An overloaded load generator never produces a pass or a fail: offered far more calls than
one process can place, the drill says so and its verdicts are inconclusive (exit 4)."""
from tests.conftest import run_scenario


def test_overloaded_generator_is_inconclusive(isolated, tmp_path):
    scenario = {
        "name": "overloaded-generator",
        "description": "3000 calls/s from one Locust process: more than it can place.",
        "target": "sandbox", "duration": "4s",
        "load": {"calls_per_second": 3000, "hold": "200ms", "rtp_share": "0%",
                 "invite_timeout": "1s", "bye_timeout": "1s"},
        # targets any hotline would meet: only the generator's own lateness can spoil them
        "sla": {"answer_rate": "0%", "dropped_call_rate": None, "steady_state_after": None},
    }
    res, run, summary = run_scenario(tmp_path, scenario, "--gate")
    assert res.returncode == 4, res.stdout[-3000:] + res.stderr[-3000:]
    gen = summary["generator"]
    behind = gen["late"] + gen["skipped"] + gen["unplaced"]
    assert behind > 0.05 * gen["offered"] and gen["offered"] > 3000
    assert summary["inconclusive"] and "fell behind its schedule" in summary["inconclusive"][0]
    assert summary["exit_code"] == 4 and not summary["passed"]
    junit = (run / "junit.xml").read_text()
    assert 'type="inconclusive"' in junit and "<failure" not in junit
    assert "INCONCLUSIVE" in (run / "report.html").read_text()
    assert "Inconclusive: these figures cannot judge the hotline" in (run / "review.md").read_text()
    assert "DRILL INCONCLUSIVE overloaded-generator" in res.stdout
    # run again as often as asked (HOTLINE_DRILL_RERUN_INCONCLUSIVE=2 from `isolated`), every
    # run kept in the folder and in the history, and the gate line is the last run's
    runs = sorted(d for d in (tmp_path / "out").iterdir() if d.is_dir())
    assert len(runs) == 3 and run == runs[-1]
    assert "run 1 inconclusive" in res.stdout and "run 2 inconclusive" in res.stdout
    assert res.stdout.count("DRILL INCONCLUSIVE") == 1 and str(run) in res.stdout.splitlines()[-1]
    history = (tmp_path / "out" / "index.jsonl").read_text().splitlines()
    assert len(history) == 3
