"""Game-day planning (blast radius, draw, seal) and capacity-search metrics: pure code."""
import random
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.gameday.limits import over_limits, radius
from harness.gameday.plan import draw, read_pool
from harness.scenario.gameday import seal, verify
from harness.metrics.capacity import knee, step_misses
from harness.metrics.detect import time_to_detect
from harness.metrics.evaluate import evaluate
from harness.scenario.gameday import BlastRadius, GameDay, load_gameday
from harness.runner.plan import load_drill
from harness.scenario.model import CapacitySearch, LoadSpec
from harness.scenario.yamlload import InputError
from tests.unit.test_metrics import call

POOL = Path(__file__).parents[1] / "e2e" / "gameday-pool"


def drill_with(tmp_path, faults: str, duration="20s"):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: s
        duration: {duration}
        faults:
        """) + textwrap.indent(textwrap.dedent(faults), "  "))
    return load_drill(p)


def test_radius_counts_nodes_under_a_fault_at_the_same_time(tmp_path):
    overlapping = drill_with(tmp_path, """\
        - {type: process.pause, target: pbx-1, at: 2s, duration: 5s}
        - {type: process.pause, target: pbx-2, at: 6s, duration: 5s}
        - {type: udp.blackhole, target: carrier-a, at: 1s, duration: 15s}
        """)
    r = radius(overlapping)
    assert (r.faults, r.nodes_at_once) == (3, 2)  # pbx-1 and pbx-2 overlap at 6-7 s; carriers are not nodes
    assert r.targets == {"pbx-1", "pbx-2", "carrier-a"}
    one_after_other = drill_with(tmp_path, """\
        - {type: process.pause, target: pbx-1, at: 2s, duration: 4s}
        - {type: process.pause, target: pbx-2, at: 6s, duration: 5s}
        """)
    assert radius(one_after_other).nodes_at_once == 1
    until_end = drill_with(tmp_path, """\
        - {type: process.pause, target: pbx-1, at: 2s}
        - {type: process.pause, target: pbx-2, at: 15s, duration: 2s}
        """)
    assert radius(until_end).nodes_at_once == 2  # no duration: lasts to the end of the drill


def test_over_limits_says_why():
    from harness.gameday.limits import Radius
    r = Radius(3, 2, frozenset({"sbc", "pbx-1"}))
    assert over_limits(r, BlastRadius()) == []
    why = over_limits(r, BlastRadius(max_faults=2, max_nodes_at_once=1, forbidden_targets=["sbc"]))
    assert why == ["3 faults > max_faults 2", "2 nodes at once > max_nodes_at_once 1",
                   "touches forbidden target(s) sbc"]
    assert over_limits(Radius(0, 0, frozenset()), BlastRadius()) == ["it injects no fault"]


def test_pool_excludes_what_the_limits_forbid():
    gd = load_gameday(POOL)
    pool = read_pool(POOL, gd)
    assert sorted(d.scenario.name for d in pool.eligible) == ["gd-kill-pbx-1", "gd-pause-pbx-2"]
    excluded = {p.name: why for p, why in pool.excluded}
    assert "forbidden target(s) sbc" in excluded["kill-sbc.yaml"]
    assert "max_faults" in excluded["both-pbx.yaml"] and "max_nodes_at_once" in excluded["both-pbx.yaml"]
    short = read_pool(POOL, gd.model_copy(update={"window": 5.0}))
    assert not short.eligible and all("longer than the window" in w for _, w in short.excluded)


def test_draw_stays_inside_the_window_and_a_seed_repeats_it():
    pool = read_pool(POOL, load_gameday(POOL))
    seen = set()
    for seed in range(40):
        plan = draw(pool, 100.0, 1000.0, random.Random(seed), "g")
        assert 1000.0 <= plan["start_at"] <= 1000.0 + 100.0 - 8.0  # both pool scenarios last 8 s
        again = draw(pool, 100.0, 1000.0, random.Random(seed), "g")
        assert (again["scenario_name"], again["start_at"]) == (plan["scenario_name"], plan["start_at"])
        seen.add(plan["scenario_name"])
    assert seen == {"gd-kill-pbx-1", "gd-pause-pbx-2"}


def test_seal_detects_any_change_to_the_plan():
    pool = read_pool(POOL, load_gameday(POOL))
    plan = draw(pool, 100.0, 1000.0, random.Random(1), "g")
    sealed = seal(plan)
    assert verify(dict(plan), sealed)
    assert not verify({**plan, "start_at": plan["start_at"] + 1}, sealed)
    assert not verify({**plan, "scenario_name": "other"}, sealed)
    # the nonce: the same draw twice gives two different seals
    assert seal(draw(pool, 100.0, 1000.0, random.Random(1), "g")) != sealed


def test_gameday_file_errors_name_the_line(tmp_path):
    (tmp_path / "gameday.yaml").write_text("window: 1h\nlimits:\n  max_fault: 1\n")
    with pytest.raises(InputError) as exc:
        load_gameday(tmp_path)
    assert "gameday.yaml:3" in str(exc.value) and "unknown key 'max_fault'" in str(exc.value)
    assert GameDay().window == 7200


def test_time_to_detect():
    assert time_to_detect([100.0, 130.0], [90.0, 112.5, 140.0]) == 12.5  # 90 s was a false alarm
    assert time_to_detect([100.0], [90.0]) is None
    assert time_to_detect([], [5.0]) is None


def test_capacity_search_generates_stairs():
    spec = LoadSpec(capacity_search={"start": 2, "step": 3, "max": 12, "step_duration": "10s"},
                    start="1s")
    assert spec.calls_per_second == 2
    assert [(c.at, c.calls_per_second) for c in spec.shape] == [(11, 5), (21, 8), (31, 11)]
    assert CapacitySearch(start=1, step=0.5, max=2, step_duration=1).rates() == [1, 1.5, 2]
    with pytest.raises(ValidationError):
        LoadSpec(capacity_search={"start": 5, "step": 1, "max": 2, "step_duration": 5})
    with pytest.raises(ValidationError):
        LoadSpec(capacity_search={"start": 1, "step": 1, "max": 2, "step_duration": 5},
                 shape=[{"at": 1, "calls_per_second": 3}])


def test_knee_is_the_last_step_met_before_the_first_miss():
    steps = [{"rate": 2, "missed": []}, {"rate": 4, "missed": []},
             {"rate": 6, "missed": ["answer_rate"]}, {"rate": 8, "missed": []}]
    assert knee(steps) == 4
    assert knee(steps[:2]) == 4
    assert knee([{"rate": 2, "missed": ["pdd_p95"]}]) is None


def test_step_misses_judges_only_the_per_call_targets():
    ok = [call(t, media=False) for t in range(10)]
    busy = ok[:8] + [call(8, ok=False), call(9, ok=False)]
    sla = {"answer_rate": 0.9, "failover_time": 1.0, "pdd_p95": None}
    assert step_misses(ok, sla) == []
    assert step_misses(busy, sla) == ["answer_rate"]  # 80 %
    assert step_misses([], sla) == ["answer_rate"]


def test_capacity_run_is_judged_by_its_knee():
    recs = [call(t / 2, media=False) for t in range(20)] + \
           [call(10 + t / 4, ok=(t % 2 == 0), media=False) for t in range(20)]
    steps = [{"rate": 2, "started": 0, "ended": 10}, {"rate": 4, "started": 10, "ended": 15}]
    sla = {"answer_rate": 0.9, "capacity": 3.0, "steady_state_after": None}
    fig = evaluate(recs, [], sla, max_gap=1, alarm_window=10, run_start=0, run_end=15,
                   steady_state_after=None, capacity_steps=steps)
    assert fig["capacity"]["knee"] == 2
    assert [s["missed"] for s in fig["capacity"]["steps"]] == [[], ["answer_rate"]]
    names = {v["target"]: v for v in fig["verdicts"]}
    assert "answer_rate" not in names  # judged per step instead of over the whole run
    assert names["capacity"]["measured"] == 2 and not names["capacity"]["passed"]


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


@pytest.mark.parametrize("args, words", [
    (["--webhook", "ftp://chat"], "webhook: String should match pattern"),
    (["--max-faults", "0"], "max_faults: Input should be greater than or equal to 1"),
    (["--window", "soon"], "--window: 'soon' is not a duration"),
])
def test_gameday_options_are_checked_before_anything_is_armed(args, words, tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app
    res = CliRunner().invoke(app, ["gameday", "--pool", str(POOL), "-o", str(tmp_path), *args])
    assert res.exit_code == 2 and words in res.output, res.output
    assert not (tmp_path / "gamedays").exists()  # nothing armed, nothing written
