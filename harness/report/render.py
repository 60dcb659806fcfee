"""Render a run folder's outputs from its saved records (events.jsonl + scenario.yaml).

`drill run` calls this at the end and `drill report RUN_DIR` calls it again,
so a report can always be rebuilt, even after a crash cut the run short.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

from harness import __version__
from harness.report.evidence import evidence
from harness.metrics.evaluate import evaluate
from harness.metrics.failover import RecoveryRule
from harness.metrics.generator import generator_problems, rtp_late_limit
from harness.metrics.registration import ATTEMPT_FIELDS, Attempt
from harness.metrics.promql import promql_figures
from harness.metrics.records import CallRecord, FaultWindow, read_run
from harness.metrics.sla import where_judged
from harness.ops.exit import EXIT_ABORTED, EXIT_INCONCLUSIVE, EXIT_MISSED, EXIT_PASS
from harness.ops.secrets import redact
from harness.report.calls_csv import write_calls_csv
from harness.report.html import write_html
from harness.report.prometheus import exposition
from harness.report.junit import write_junit
from harness.report.review import write_review
from harness.scenario.gameday import verify
from harness.scenario.model import Scenario
from harness.scenario.yamlload import load_yaml


def probe_events(events: list[dict]) -> list[dict]:
    """Each probe's records, with the servers that took writes after the rollback."""
    after = {ev["probe"]: ev.get("primaries") for ev in events if ev["event"] == "primaries_after"}
    return [{**ev, "primaries": after.get(ev["probe"])} for ev in events
            if ev["event"] == "probe_records"]


def fault_windows(events: list[dict]) -> list[FaultWindow]:
    windows: dict[str, FaultWindow] = {}
    for ev in events:
        if ev["event"] == "fault_injected":
            windows[ev["fault_id"]] = FaultWindow(ev["fault_id"], ev["type"], ev["target"],
                                                  ev["ts"], None, tuple(ev.get("nodes", [])))
        elif ev["event"] == "fault_rolled_back" and ev["fault_id"] in windows:
            windows[ev["fault_id"]].ended_at = ev["ts"]
            windows[ev["fault_id"]].undo_started = ev.get("undo_started", ev["ts"])
    return list(windows.values())


def recovery_rule(sc: Scenario) -> RecoveryRule:
    m = sc.metrics
    return RecoveryRule(m.recovery_window, m.recovery_min_attempts, m.recovery_tolerance)


def read_gameday(run_dir: Path) -> dict | None:
    """The game-day record of a run, with whether its plan matches the hash sealed at arming."""
    path = run_dir / "gameday.json"
    if not path.exists():
        return None
    game_day = json.loads(path.read_text())
    game_day["plan_matches_seal"] = verify(game_day["plan"], game_day["sealed_sha256"])
    return game_day


def summarize(run_dir: Path) -> tuple[dict, list[CallRecord]]:
    records, events, last_ts = read_run(run_dir / "events.jsonl")  # calls as records, once
    data, _ = load_yaml(run_dir / "scenario.yaml")
    sc = Scenario.model_validate(data)
    first = {ev["event"]: ev for ev in reversed(events)}  # first occurrence of each kind
    started = first.get("run_started", {}).get("ts", min((r.started_at for r in records), default=0))
    ended = first.get("run_finished", {}).get("ts", last_ts if last_ts is not None else started)
    aborted = first.get("run_aborted")
    steady = first.get("steady_state_after")
    windows = fault_windows(events)
    sla = sc.sla.model_dump()
    gameday = read_gameday(run_dir)
    if gameday:
        sla.update({k: v for k, v in gameday.get("sla", {}).items() if v is not None})
    sla = where_judged(sla, set(sc.sla.model_fields_set) | set((gameday or {}).get("sla", {})),
                       records)
    steps = [{k: ev[k] for k in ("rate", "started", "ended")} for ev in events
             if ev["event"] == "capacity_step"]
    figures = evaluate(records, windows, sla, max_gap=sc.metrics.media_gap,
                       pdd_good=sc.metrics.pdd_good, rule=recovery_rule(sc),
                       alarm_window=sc.metrics.alarm_window,
                       run_start=started, run_end=ended,
                       steady_state_after=steady["ok"] if steady else None,
                       acks=[{"ts": ev["ts"], "by": ev.get("by"), "note": ev.get("note", "")}
                             for ev in events if ev["event"] == "ack"],
                       capacity_steps=steps if sc.load.capacity_search else None,
                       probes=probe_events(events), service_time=sc.metrics.service_time,
                       registrations=[Attempt(**{k: ev[k] for k in ATTEMPT_FIELDS})
                                      for ev in events if ev["event"] == "registration"],
                       agent_answers={ev["call_id"]: ev["agent"] for ev in events
                                      if ev["event"] == "agent_answered"}
                       if sc.load.dial == "agents" else None,
                       storms=[ev["ts"] for ev in events if ev["event"] == "agents_storm"],
                       short_abandon=sc.metrics.short_abandon, interval=sc.metrics.interval)
    health = next((ev for ev in reversed(events) if ev["event"] == "generator_health"), None)
    given = set(sc.sla.model_fields_set) | set((gameday or {}).get("sla", {}))
    inconclusive = generator_problems(health, first.get("workers_lost"),
                                      figures["voice"]["sending"], rtp_late_limit(sla, given))
    if inconclusive:
        figures["passed"] = False  # never a pass, and the exit code says it is not a fail either
    exit_code = EXIT_ABORTED if aborted else EXIT_INCONCLUSIVE if inconclusive else \
        (EXIT_PASS if figures["passed"] else EXIT_MISSED)
    summary = {
        "scenario": {"name": sc.name, "description": sc.description, "target": sc.target,
                     "tags": sc.tags, "seed": sc.seed, "duration": sc.duration,
                     "alarm_window": sc.metrics.alarm_window,
                     "load": sc.load.model_dump()},
        "run": {"run_id": first.get("run_started", {}).get("run_id", run_dir.name),
                "started_at": started, "ended_at": ended, "elapsed": ended - started,
                "aborted": bool(aborted), "abort_reason": aborted["reason"] if aborted else None,
                "stop_reason": first.get("run_stopping", {}).get("reason"),
                "steady_state_after": steady["ok"] if steady else None,
                "versions": {"hotline-drill": __version__, "python": platform.python_version()}},
        "timeline": events,
        **figures,
        "inconclusive": inconclusive,
        "generator": {k: v for k, v in (health or {}).items() if k not in ("event", "ts")} or None,
        "gameday": gameday,
        "exit_code": exit_code,
    }
    summary["promql"] = [promql_figures(ev, windows) for ev in events
                         if ev["event"] == "promql_samples"]
    summary["resilience"] = resilience_at_end(run_dir, summary)
    summary["evidence"] = evidence(run_dir, summary, records)
    return summary, records


def render_run(run_dir: Path, stop=lambda: None) -> dict:
    """Write summary.json, calls.csv, junit.xml, review.md, report.html and metrics.prom.

    `stop()` is asked before each output after summary.json: a reason (the drill was told to
    stop while its report was written) leaves the rest unwritten, says so in summary.json
    under `report_stopped`, and makes the exit code 3; `drill report RUN_DIR` writes them."""
    run_dir = Path(run_dir)
    summary, records = summarize(run_dir)
    summary = redact(summary)  # every output below is rendered from this: no credential in any
    return write_outputs(run_dir, summary, records, stop)


def resilience_at_end(run_dir: Path, summary: dict) -> dict:
    """The target's resilience score as this run left it: the history in the reports folder
    the run is in, before its end, and this run (a rebuild later gives the same figure)."""
    from harness.report import history, score
    entries = [e for e in history.read(run_dir.parent / "index.jsonl")
               if Path(e["run_dir"]).name != run_dir.name]
    entries.append(history.entry_of(summary, run_dir))
    return score.as_dict(entries, summary["scenario"]["target"], summary["run"]["ended_at"])


def write_outputs(run_dir: Path, summary: dict, records: list[CallRecord], stop=lambda: None) -> dict:
    outputs = {
        "calls.csv": lambda: write_calls_csv(sorted(records, key=lambda r: r.started_at),
                                             run_dir / "calls.csv"),
        "junit.xml": lambda: write_junit(summary, run_dir / "junit.xml"),
        "review.md": lambda: write_review(summary, run_dir / "review.md"),
        "report.html": lambda: write_html(summary, records, run_dir / "report.html"),
        "metrics.prom": lambda: (run_dir / "metrics.prom").write_text(exposition(summary)),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for i, (name, write) in enumerate(outputs.items()):
        reason = stop()
        if reason:
            summary["exit_code"] = EXIT_ABORTED
            summary["report_stopped"] = {"reason": reason, "not_written": list(outputs)[i:]}
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
            break
        write()
    return summary
