"""Game-day planning: blast radius, the draw, options checked before anything is armed. Pure."""
import random
import textwrap
from pathlib import Path
import pytest
from harness.gameday.limits import over_limits, radius
from harness.gameday.plan import draw, read_pool
from harness.scenario.gameday import BlastRadius, load_gameday
from harness.runner.plan import load_drill


def drill_with(tmp_path, faults: str, duration="20s"):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: s
        duration: {duration}
        faults:
        """) + textwrap.indent(textwrap.dedent(faults), "  "))
    return load_drill(p)


POOL = Path(__file__).parents[2] / "e2e" / "gameday-pool"


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
