"""`drill gameday`: arm a sealed plan, wait in secret, run the drill, tell the webhook.

Order: read and check the pool (exit 2 on any invalid file or when nothing
may be drawn), draw and seal the plan, start the acknowledgement endpoint,
notify `gameday_armed`, wait until the secret start time (Ctrl-C cancels:
nothing injected, the plan is revealed), then run the drill like
`drill run`, revealing the plan in its run folder, and notify
`gameday_started`, `gameday_aborted`, `gameday_finished`.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.gameday.ack import AckServer
from harness.gameday.notify import Notifier
from harness.gameday.plan import Pool, draw, read_pool
from harness.ops.exit import EXIT_ABORTED
from harness.ops.secrets import redact
from harness.ops.state import state_home
from harness.runner.drill import run_drill
from harness.runner.engine import StopSignals
from harness.runner.plan import load_drill
from harness.scenario.gameday import GameDay, seal
from harness.scenario.yamlload import InputError


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)


class GameDayObserver:
    """Plugs a game day into one drill run: reveals the plan, records acks, notifies."""

    def __init__(self, game_day: GameDay, plan: dict, sealed: str, pool: Pool, ack: AckServer,
                 notifier: Notifier, console: Console):
        self.game_day, self.plan, self.sealed, self.pool = game_day, plan, sealed, pool
        self.ack, self.notifier, self.console = ack, notifier, console
        self.run = None
        self.fault_starts: list[float] = []

    def _notify(self, event: str, **data) -> None:
        entry = self.notifier.send(event, **data)
        if self.run is not None:
            self.run.bus.publish("webhook", sent=event, url=entry["url"], error=entry["error"])

    def attach(self, run) -> None:
        self.run = run
        (run.run_dir / "gameday.json").write_text(json.dumps(redact({
            "plan": self.plan, "sealed_sha256": self.sealed, "limits": self.game_day.limits.model_dump(),
            "window": self.game_day.window, "ack_url": self.ack.url,
            "sla": {"time_to_detect": self.game_day.time_to_detect},
            "pool": [str(d.path) for d in self.pool.eligible],
            "excluded": [{"file": str(p), "why": why} for p, why in self.pool.excluded]}), indent=2))
        run.bus.publish("gameday_revealed", plan=self.plan, sealed_sha256=self.sealed)
        for a in self.ack.acks:  # acknowledgements while the game day was armed: false alarms
            run.bus.publish("ack", ts=a["ts"], by=a["by"], note=a["note"])
        self.ack.on_ack = lambda a: run.bus.publish("ack", ts=a["ts"], by=a["by"], note=a["note"])
        run.bus.subscribe(self._on_event, essential=True)  # time to detect
        self._notify("gameday_started", scenario=self.plan["scenario_name"],
                     run_dir=str(run.run_dir), plan=self.plan)

    def _on_event(self, ev: dict) -> None:
        if ev["event"] == "fault_injected":
            self.fault_starts.append(ev["ts"])
        elif ev["event"] == "run_aborted":
            self._notify("gameday_aborted", reason=ev["reason"], run_dir=str(self.run.run_dir))

    def finish(self, run) -> None:
        """Give on-call up to `ack_wait` after the drill to acknowledge, if nobody has yet."""
        first = min(self.fault_starts, default=None)
        if first is None or run.abort_reason or any(a["ts"] >= first for a in self.ack.acks):
            return
        self.ack.got_one.clear()
        deadline = time.time() + self.game_day.ack_wait
        with self.console.status(f"drill over; waiting up to {self.game_day.ack_wait:g}s for an "
                                 f"acknowledgement (drill ack --url {self.ack.url})"):
            # a signal (SIGINT, SIGTERM: the drill's own handler) ends the wait
            while time.time() < deadline and not run.interrupt.is_set():
                if self.ack.got_one.wait(0.2):
                    break


def wait_in_secret(until: float, sealed: str, window_end: float, console: Console,
                   cancel: StopSignals) -> str | None:
    """Sleep until the secret start; returns why, when a signal cancelled it."""
    with console.status(f"armed; sealed plan sha256 {sealed[:16]}…; the drill starts at a "
                        f"secret time before {time.strftime('%H:%M:%S', time.localtime(window_end))}"):
        while time.time() < until and cancel.reason is None:
            time.sleep(0.1)
    return cancel.reason


@dataclass
class Armed:
    """A game day between arming and its run: the secret plan and who is told what."""

    gid: str
    plan: dict
    sealed: str
    pool: Pool
    secret: Path   # the plan, readable by the harness's user only, until the reveal
    public: Path   # reports/gamedays/<id>.json: the hash while armed, the plan once revealed
    record: dict
    ack: AckServer
    notifier: Notifier
    token_file: Path  # the acknowledgement token, 0600: `drill ack` on this machine reads it

    def publish(self) -> None:
        self.public.write_text(json.dumps(redact(self.record), indent=2))

    def close(self) -> None:
        self.ack.close()
        self.secret.unlink(missing_ok=True)
        self.token_file.unlink(missing_ok=True)


def arm(pool_dir: Path, game_day: GameDay, output: Path | None, console: Console) -> Armed:
    """Draw a scenario and a start time from the pool and seal the plan; nothing is told yet."""
    pool = read_pool(pool_dir, game_day)
    for path, why in pool.excluded:
        console.print(f"not drawable: {path.name}: {why}", highlight=False)
    if not pool.eligible:
        raise InputError([f"{pool_dir}: no scenario may be drawn (see above); fix the limits in "
                          f"{pool_dir / 'gameday.yaml'} or add scenarios (nothing was injected)"])
    gid = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    rng = random.Random(game_day.seed) if game_day.seed is not None else random.SystemRandom()
    plan = draw(pool, game_day.window, time.time(), rng, gid)
    sealed = seal(plan)
    secret = state_home() / "gamedays" / f"{gid}.plan.json"
    _write_private(secret, plan)
    token = secrets.token_urlsafe(18)
    token_file = state_home() / "gamedays" / f"{gid}.ack-token"
    _write_private(token_file, {"gameday_id": gid, "token": token})
    public = (Path(output) if output else Path("reports")) / "gamedays" / f"{gid}.json"
    record = {"gameday_id": gid, "sealed_sha256": sealed, "armed_at": plan["armed_at"],
              "window_end": plan["window_end"], "pool": [d.scenario.name for d in pool.eligible],
              "limits": game_day.limits.model_dump(), "plan": None}
    public.parent.mkdir(parents=True, exist_ok=True)
    armed = Armed(gid, plan, sealed, pool, secret, public, record,
                  AckServer(game_day.ack_listen, gid, token), Notifier(game_day.webhook, gid, sealed),
                  token_file)
    armed.publish()
    armed.ack.start()
    return armed


def announce_and_wait(armed: Armed, game_day: GameDay, console: Console) -> str | None:
    """Tell everyone it is armed (the hash only), wait for the secret start, then reveal the
    plan; returns why when Ctrl-C or SIGTERM cancelled it first. The handlers are in place
    before anyone is told it is armed, so a signal sent on the armed webhook is never missed."""
    with StopSignals() as cancel:
        console.print(f"game day {armed.gid} armed: {len(armed.pool.eligible)} scenario(s) in the "
                      f"pool, window {game_day.window:g}s; sealed plan sha256 {armed.sealed}",
                      highlight=False)
        console.print(f"acknowledgements: drill ack --url {armed.ack.url} --token "
                      f"{armed.ack.token} (on this machine `drill ack` finds the token itself)",
                      highlight=False)
        armed.notifier.send("gameday_armed", window_end=armed.plan["window_end"],
                            ack_url=armed.ack.url, ack_token=armed.ack.token,
                            pool=[d.scenario.name for d in armed.pool.eligible])
        cancelled = wait_in_secret(armed.plan["start_at"], armed.sealed, armed.plan["window_end"],
                                   console, cancel)
    armed.record["plan"] = armed.plan  # revealed from here on, whatever happens next
    armed.publish()
    return cancelled


def run_drawn(armed: Armed, game_day: GameDay, output: Path | None,
              console: Console) -> tuple[int, Path | None]:
    """Run the drawn scenario, exactly the one sealed; notify and record how it went."""
    plan, notifier = armed.plan, armed.notifier
    drill = load_drill(Path(plan["scenario_file"]), game_day.target)
    if hashlib.sha256(drill.path.read_bytes()).hexdigest() != plan["scenario_sha256"]:
        raise InputError([f"{drill.path}: the scenario changed after the game day was armed; "
                          "refusing to run a plan that differs from the sealed one"])
    console.print(f"game day {armed.gid}: drawn {drill.scenario.name} ({drill.path})",
                  highlight=False)
    observer = GameDayObserver(game_day, plan, armed.sealed, armed.pool, armed.ack, notifier, console)
    code, run_dir = run_drill(drill, output, console, observers=[observer])
    summary = json.loads((run_dir / "summary.json").read_text()) if run_dir else {}
    detection = summary.get("detection", {})
    notifier.send("gameday_finished", exit_code=code, run_dir=str(run_dir) if run_dir else None,
                  scenario=drill.scenario.name, time_to_detect=detection.get("time_to_detect"),
                  failed_targets=[v["target"] for v in summary.get("verdicts", []) if not v["passed"]])
    if run_dir:
        record = json.loads((run_dir / "gameday.json").read_text())
        record["notifications"] = notifier.log
        (run_dir / "gameday.json").write_text(json.dumps(redact(record), indent=2))
    armed.record["run_dir"] = str(run_dir) if run_dir else None
    armed.record["notifications"] = notifier.log
    armed.publish()
    return code, run_dir


def run_gameday(pool_dir: Path, game_day: GameDay, output: Path | None, console: Console) -> tuple[int, Path | None]:
    """Arm, wait in secret, run; returns (exit code, run folder)."""
    import harness.load.sip_load  # noqa: F401  Locust patches the stdlib for gevent: before any thread
    armed = arm(pool_dir, game_day, output, console)
    try:
        cancelled = announce_and_wait(armed, game_day, console)
        if cancelled:
            armed.notifier.send("gameday_aborted", reason=f"{cancelled} before the drill "
                                "started; nothing was injected", plan=armed.plan)
            console.print(f"game day cancelled ({cancelled}) before it started; nothing injected; "
                          f"plan revealed in {armed.public}", highlight=False)
            return EXIT_ABORTED, None
        return run_drawn(armed, game_day, output, console)
    finally:
        armed.close()
