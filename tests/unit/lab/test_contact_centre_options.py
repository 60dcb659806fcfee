"""The sandbox contact centre's groups: own agents or the registered phones, never both, at
most one group of registered phones; the ACD is told where the registrar's table is."""
import pytest
from pydantic import ValidationError

from harness.lab.sandbox import ContactCentre, SandboxConfig, _node_program


def test_a_group_of_registered_phones_reads_the_registrars_table(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path))
    cfg = SandboxConfig(contact_centre={"groups": {"sales": "registered", "care": 2}})
    argv = _node_program(cfg, "pbx-1")
    i = argv.index("--registered")
    assert argv[i + 1] == "sales" and argv[i + 2] == "--location-file"
    assert argv[i + 3].endswith("location.json")
    assert "sales=0" in argv and "care=2" in argv


@pytest.mark.parametrize("groups,words", [
    ({"sales": {"agents": 2, "registered": True}}, "one of the two"),
    ({"sales": {"agents": 0}}, "one of the two"),
    ({"sales": "registered", "care": "registered"}, "one group at most"),
])
def test_groups_answered_by_nobody_or_twice_are_refused(groups, words):
    with pytest.raises(ValidationError) as exc:
        ContactCentre.model_validate({"groups": groups})
    assert words in str(exc.value)
