"""Drill history (reports/index.jsonl) and the drill calendar: which drills are due or overdue."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

# days between drills, per scenario tag (MISSION.md: monthly switch-over,
# quarterly DR, surprise tests at least four times a year)
DEFAULT_CADENCE = {"monthly-switchover": 31, "quarterly-dr": 92, "surprise": 91}
DUE_SOON_DAYS = 7


def append(index: Path, summary: dict, run_dir: Path) -> dict:
    """Add one run to the index (one JSON line, appended and flushed)."""
    entry = entry_of(summary, run_dir)
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(index, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return entry


def entry_of(summary: dict, run_dir: Path) -> dict:
    """One run as the index keeps it."""
    return {"run_dir": str(run_dir), "scenario": summary["scenario"]["name"],
             "target": summary["scenario"]["target"], "tags": summary["scenario"]["tags"],
             "started_at": summary["run"]["started_at"], "passed": summary["passed"],
             "aborted": summary["run"]["aborted"], "exit_code": summary["exit_code"],
             "failed_targets": [v["target"] for v in summary["verdicts"] if not v["passed"]],
             "fault_types": sorted({f["type"] for f in summary.get("faults") or []})}


def read(index: Path) -> list[dict]:
    if not index.exists():
        return []
    out = []
    for line in index.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return sorted(out, key=lambda e: e["started_at"])


@dataclass
class CalendarRow:
    tag: str
    cadence_days: int
    last_run: float | None
    last_passed: float | None
    due: float | None
    status: str  # ok, due soon, overdue, never run


def calendar(entries: list[dict], now: float, cadence: dict[str, int] | None = None) -> list[CalendarRow]:
    """Per tag: last run, last passed run, when the next is due, and its status. Pure."""
    cadence = {**DEFAULT_CADENCE, **(cadence or {})}
    rows = []
    for tag, days in sorted(cadence.items()):
        runs = [e for e in entries if tag in e.get("tags", [])]
        last = max((e["started_at"] for e in runs), default=None)
        passed = max((e["started_at"] for e in runs if e["passed"] and not e["aborted"]), default=None)
        due = None if passed is None else passed + days * 86400
        if due is None:
            status = "never run" if last is None else "overdue"
        elif now > due:
            status = "overdue"
        elif now > due - DUE_SOON_DAYS * 86400:
            status = "due soon"
        else:
            status = "ok"
        rows.append(CalendarRow(tag, days, last, passed, due, status))
    return rows


def day(ts: float | None) -> str:
    return "—" if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")
