"""The game-day plan: which scenario, when; drawn at random inside the window.

It carries a random nonce, so its sealed hash (see seal.py) cannot be matched
by trying every scenario and start second.
"""
from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from harness.gameday.limits import over_limits, radius
from harness.scenario.gameday import GameDay
from harness.runner.plan import Drill, load_drill


@dataclass
class Pool:
    eligible: list[Drill]
    excluded: list[tuple[Path, str]]


def read_pool(folder: Path, game_day: GameDay) -> Pool:
    """Every scenario in `folder` (all must be valid), split into drawable and excluded."""
    eligible, excluded = [], []
    for path in sorted(folder.glob("*.y*ml")):
        if path.name in ("gameday.yaml", "gameday.yml"):
            continue
        drill = load_drill(path, game_day.target)  # an invalid file stops the game day: InputError
        why = over_limits(radius(drill), game_day.limits)
        if drill.scenario.duration > game_day.window:
            why.append(f"it lasts {drill.scenario.duration:g}s, longer than the window "
                       f"({game_day.window:g}s)")
        if why:
            excluded.append((path, "; ".join(why)))
        else:
            eligible.append(drill)
    return Pool(eligible, excluded)


def draw(pool: Pool, window: float, now: float, rng: random.Random, gameday_id: str) -> dict:
    """Pick a scenario and a start time so the drill ends inside [now, now + window]."""
    drill = rng.choice(pool.eligible)
    start = now + rng.uniform(0, window - drill.scenario.duration)
    return {
        "gameday_id": gameday_id,
        "armed_at": round(now, 3),
        "window_end": round(now + window, 3),
        "scenario_file": str(drill.path),
        "scenario_name": drill.scenario.name,
        "scenario_sha256": hashlib.sha256(drill.path.read_bytes()).hexdigest(),
        "start_at": round(start, 3),
        "nonce": secrets.token_hex(16),
    }
