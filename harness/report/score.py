"""The resilience score: one figure per target, and one per category of drill, from the drill
history (reports/index.jsonl), that says whether a hotline's resilience is proven, and
proven lately. Pure: the history and `now` in, the scores out.

The formula (README, "Resilience score"):

- A drill's result is worth PASS 100, FAIL 50 (it ran: the weakness is known), ABORTED 50,
  INCONCLUSIVE 25 (it ran, the generator could not keep to its schedule: no verdict). A run
  refused for bad input (exit 2) injected nothing and does not count.
- Each scenario counts by its latest result for that target, aged: worth all of it for the
  category's cadence after it ran, then less in a straight line, nothing at twice the
  cadence (an overdue drill fades; one never run again is worth 0).
- A category's score is the mean over the scenarios of that target in it; a category with
  no run at all scores 0 ("not run"). The target's score is the mean over the categories
  asked for (by default all six: a category never drilled is a gap, and counts as one).
- A run belongs to every category its tags or fault types name (a surge during a node loss
  is both), by the rules in CATEGORIES.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DAY = 86400.0
POINTS = {"passed": 100.0, "failed": 50.0, "aborted": 50.0, "inconclusive": 25.0}

# category -> (tags that put a run in it, fault-type prefixes that do, cadence in days)
CATEGORIES: dict[str, tuple[set[str], tuple[str, ...], int]] = {
    "node loss": ({"node-loss", "monthly-switchover", "hang", "resources", "pbx"},
                  ("process.", "docker.", "stress."), 31),
    "carrier": ({"carrier", "dns", "bandwidth", "quality"},
                ("net.", "udp.", "toxiproxy.", "dns."), 31),
    "dr": ({"quarterly-dr", "lab-dr", "site-loss", "dr"}, (), 92),
    "surge": ({"surge", "capacity"}, (), 92),
    "security": ({"security"}, ("sipflood.",), 92),
    "journey": ({"contact-centre", "agents", "journey", "staffing", "overflow"}, (), 31),
}


def result_of(entry: dict) -> str | None:
    """passed / failed / aborted / inconclusive of one history entry; None: not counted."""
    code = entry.get("exit_code")
    if code == 2:
        return None
    if code == 4:
        return "inconclusive"
    if entry.get("aborted") or code == 3:
        return "aborted"
    return "passed" if entry.get("passed") else "failed"


def categories_of(entry: dict) -> set[str]:
    """The categories one run counts in, from its tags and its faults' types."""
    tags = set(entry.get("tags") or [])
    types = entry.get("fault_types") or []
    return {name for name, (by_tag, by_type, _) in CATEGORIES.items()
            if tags & by_tag or any(t.startswith(p) for t in types for p in by_type)}


def freshness(age_days: float, cadence_days: float) -> float:
    """1 within the cadence, then down in a straight line to 0 at twice the cadence."""
    if age_days <= cadence_days:
        return 1.0
    return max(0.0, 1.0 - (age_days - cadence_days) / cadence_days)


@dataclass
class ScenarioScore:
    scenario: str
    result: str
    ran_at: float
    points: float        # before ageing
    worth: float         # after ageing


@dataclass
class CategoryScore:
    category: str
    score: float                      # 0-100
    scenarios: list[ScenarioScore] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "not run" if not self.scenarios else f"{len(self.scenarios)} scenario(s)"


@dataclass
class TargetScore:
    target: str
    score: float
    categories: list[CategoryScore]


def score_target(entries: list[dict], target: str, now: float,
                 categories: list[str] | None = None) -> TargetScore:
    """The target's score at `now`, from the runs before it."""
    names = categories or list(CATEGORIES)
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}: choose from {', '.join(CATEGORIES)}")
    latest: dict[str, dict] = {}
    for e in sorted(entries, key=lambda e: e["started_at"]):
        if e.get("target") == target and e["started_at"] <= now and result_of(e):
            latest[e["scenario"]] = e
    out = []
    for name in names:
        cadence = CATEGORIES[name][2]
        rows = []
        for scenario, e in sorted(latest.items()):
            if name not in categories_of(e):
                continue
            result = result_of(e)
            pts = POINTS[result]
            rows.append(ScenarioScore(scenario, result, e["started_at"], pts,
                                      pts * freshness((now - e["started_at"]) / DAY, cadence)))
        score = sum(r.worth for r in rows) / len(rows) if rows else 0.0
        out.append(CategoryScore(name, score, rows))
    return TargetScore(target, sum(c.score for c in out) / len(out), out)


def targets(entries: list[dict]) -> list[str]:
    return sorted({e["target"] for e in entries if e.get("target")})


def trend(entries: list[dict], target: str, now: float, weeks: int = 12,
          categories: list[str] | None = None) -> list[tuple[float, float]]:
    """(time, score) at the end of each of the last `weeks` weeks, the last one `now`."""
    return [(t, score_target(entries, target, t, categories).score)
            for t in (now - (weeks - 1 - i) * 7 * DAY for i in range(weeks))]


def as_dict(entries: list[dict], target: str, now: float, weeks: int = 12,
            categories: list[str] | None = None) -> dict:
    """The target's score, its categories and its trend, as summary.json keeps them."""
    got = score_target(entries, target, now, categories)
    return {"target": target, "at": now, "score": round(got.score, 1),
            "categories": {c.category: {"score": round(c.score, 1), "scenarios": len(c.scenarios)}
                           for c in got.categories},
            "trend": [[t, round(v, 1)] for t, v in trend(entries, target, now, weeks, categories)]}
