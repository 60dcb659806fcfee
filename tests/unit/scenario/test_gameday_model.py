"""The game-day model and its seal, and the capacity search's stairs: schema, pure."""
import random
from pathlib import Path
import pytest
from pydantic import ValidationError
from harness.gameday.plan import draw, read_pool
from harness.scenario.gameday import seal, verify
from harness.scenario.gameday import GameDay, load_gameday
from harness.scenario.model import CapacitySearch, LoadSpec
from harness.scenario.yamlload import InputError


POOL = Path(__file__).parents[2] / "e2e" / "gameday-pool"


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
