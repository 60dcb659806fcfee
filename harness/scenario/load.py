"""Read a scenario file or a target inventory file into validated data. Pure schema + YAML.

Every problem comes back as `file:line: message (hint)`, all at once (InputError,
exit 2). Turning a scenario into a runnable plan (injectors, targets) is the
runner's job: `runner/plan.py`.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.scenario.inventory import TargetInventory
from harness.scenario.model import Scenario
from harness.scenario.yamlload import InputError, line_problems, load_yaml


def read_scenario(path: Path) -> tuple[Scenario, dict]:
    """(scenario, the line of every key) of a scenario file."""
    data, lines = load_yaml(path)
    try:
        return Scenario.model_validate(data), lines
    except ValidationError as err:
        raise InputError(line_problems(err, path, lines)) from None


def read_inventory(path: Path) -> TargetInventory:
    """A target inventory YAML (nodes, links, entry points, allowlist)."""
    try:
        missing = not path.exists()
    except OSError:  # a name too long: load_yaml says so
        missing = False
    if missing:
        raise InputError([f"{path}: target inventory not found "
                          f"(hint: use 'sandbox' or a path to an inventory YAML)"])
    data, lines = load_yaml(path)
    try:
        return TargetInventory.model_validate(data)
    except ValidationError as err:
        raise InputError(line_problems(err, path, lines)) from None
