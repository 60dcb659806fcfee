"""The SLA catalogue is the one place a target is declared: the schema, the verdicts and
README's table all follow it."""
from pathlib import Path

import pytest

from harness.metrics.sla import TARGETS, Figures, markdown_table, verdicts
from harness.scenario.model import SlaSpec

README = Path(__file__).resolve().parents[3] / "README.md"


def test_schema_has_one_field_per_catalogued_target_with_its_default():
    assert list(SlaSpec.model_fields) == list(TARGETS)
    spec = SlaSpec()
    for name, t in TARGETS.items():
        expected = None if t.default is None or t.judged_when else t.default
        assert getattr(spec, name) == expected, name


def test_readme_table_is_the_catalogue():
    assert markdown_table() in README.read_text(), \
        "README's SLA table is out of date: paste `python -m harness.metrics.sla` into it"


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_enabled_target_gets_a_verdict_even_with_nothing_measured(name):
    # an empty run: each target either says there was nothing to judge, or fails — none vanish
    (v,) = verdicts({name: TARGETS[name].default or 1.0}, Figures())
    assert v.target == name and v.measured is None
    assert v.passed or v.detail, f"{name} fails an empty run without saying why"


def test_a_key_the_catalogue_does_not_know_fails_as_not_measured():
    (v,) = verdicts({"answer_rate": None, "jitter_p95": 0.03}, Figures())
    assert v.target == "jitter_p95" and not v.passed and "not measured" in v.detail
