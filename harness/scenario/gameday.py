"""A game day: which scenarios may be drawn, when, what may be touched, who is told.

Read from `gameday.yaml` in the pool folder when there is one; `drill gameday`
options override it. Every field is documented in README.md ("Surprise game days").
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field, ValidationError

from harness.scenario.model import Duration, Strict
from harness.scenario.yamlload import InputError, line_problems, load_yaml


class BlastRadius(Strict):
    """Limits on what one game day may do; a scenario over any of them is never drawn."""

    max_faults: int | None = Field(None, ge=1, description="faults in the whole drill")
    max_nodes_at_once: int | None = Field(None, ge=1, description="nodes under a fault at one time")
    forbidden_targets: list[str] = []


class GameDay(Strict):
    window: Duration = 2 * 3600.0
    seed: int | None = None
    target: str | None = None
    webhook: str | None = Field(None, pattern=r"^https?://")
    ack_listen: str = "127.0.0.1:8089"
    ack_wait: Duration = 300.0
    time_to_detect: Duration | None = None
    limits: BlastRadius = BlastRadius()


def load_gameday(pool: Path) -> GameDay:
    """The pool's gameday.yaml, or the defaults when it has none."""
    path = pool / "gameday.yaml"
    if not path.exists():
        return GameDay()
    data, lines = load_yaml(path)
    try:
        return GameDay.model_validate(data)
    except ValidationError as err:
        raise InputError(line_problems(err, path, lines)) from None


# Sealing: at arming only the SHA-256 of the plan is shown; when the drill starts the plan
# is revealed, and anyone can check that sha256(canonical(plan)) is the hash shown.

def with_options(game_day: GameDay, *, window: str | None = None, ack_wait: str | None = None,
                 max_faults: int | None = None, max_nodes: int | None = None,
                 forbid: list[str] = (), **given) -> GameDay:
    """The pool's game day with the command line's options over it, checked as the file is:
    a bad option is an InputError (exit 2). Durations come as text (`--window 2h`); `forbid`
    adds to the file's forbidden targets; the other options replace the file's values."""
    from harness.scenario.model import parse_duration
    overrides = {k: v for k, v in given.items() if v is not None}
    for key, text in (("window", window), ("ack_wait", ack_wait)):
        if text is not None:
            try:
                overrides[key] = parse_duration(text)
            except ValueError as exc:
                raise InputError([f"--{key.replace('_', '-')}: {exc}"]) from None
    limits = {"max_faults": max_faults, "max_nodes_at_once": max_nodes}
    limits = {**game_day.limits.model_dump(), **{k: v for k, v in limits.items() if v is not None}}
    limits["forbidden_targets"] = [*game_day.limits.forbidden_targets, *forbid]
    try:
        return GameDay.model_validate({**game_day.model_dump(), "limits": limits, **overrides})
    except ValidationError as exc:
        raise InputError([f"drill gameday options: {e['loc'][-1]}: {e['msg']}"
                          for e in exc.errors()]) from None


def canonical(plan: dict) -> bytes:
    return json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()


def seal(plan: dict) -> str:
    return hashlib.sha256(canonical(plan)).hexdigest()


def verify(plan: dict, sealed: str) -> bool:
    """Does the revealed plan match the hash committed when the game day was armed?"""
    return seal(plan) == sealed
