"""`drill run`: wire a checked drill to the sandbox, the load, the engine and the reports."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.console import Console

from harness.faults.base import FaultError
from harness.report.render import EXIT_INPUT, render_run
from harness.runner.abort import describe
from harness.runner.engine import (DrillRun, SetupError, install_signal_handlers, new_journal,
                                   open_event_log, restore_signal_handlers)
from harness.runner.live import LiveView
from harness.runner.steady import steady_state
from harness.scenario.load import Drill


def describe_plan(drill: Drill) -> list[str]:
    """The dry-run timeline: each fault, on what, when, for how long, and how it is undone."""
    sc = drill.scenario
    lines = [f"drill {sc.name} against target '{drill.inventory.name}', {sc.duration:g}s",
             f"  {sc.load.start:g}s: load ({sc.load.engine} engine) starts at "
             f"{sc.load.calls_per_second:g} calls/s, hold {sc.load.hold:g}s, "
             f"RTP on {sc.load.rtp_share:.0%} of calls, via "
             f"{', '.join(sc.load.carriers or [e.name for e in drill.inventory.entry_points])}"]
    if sc.sandbox:
        o = sc.sandbox
        lines.append(f"  sandbox: {o.pbx_nodes} PBX node(s), SBC health check "
                     f"{'on' if o.health_check else 'OFF (never marks a node down)'}, {o.dispatch} "
                     f"dispatch, failover timer {o.failover_timer:g}s"
                     + (", PBX nodes drop Record-Route" if o.pbx_drops_record_route else "")
                     + (", carriers as outbound proxy" if o.outbound_proxy else ""))
    if sc.load.capacity_search:
        cs = sc.load.capacity_search
        lines.append(f"  capacity search: +{cs.step:g} calls/s every {cs.step_duration:g}s up to "
                     f"{cs.max:g}; the drill ends at the first step that misses a per-call target")
    steps = [(c.at, f"load changes to {c.calls_per_second:g} calls/s"
                    + (f" over {c.ramp:g}s" if c.ramp else "")) for c in sc.load.shape]
    for pf in drill.faults:
        until = f"for {pf.spec.duration:g}s" if pf.spec.duration is not None else "until the load ends"
        steps.append((pf.spec.at, f"{pf.fault_id}: {pf.build().describe()}; {until}"))
    lines += [f"  {at:g}s: {text}" for at, text in sorted(steps, key=lambda x: x[0])]
    for rule in sc.abort_when:
        lines.append(f"  always: abort (roll back everything, exit 3) if {describe(rule)}")
    lines.append(f"  {sc.duration:g}s: load stops; every fault still active is rolled back; "
                 "steady state checked")
    return lines


def run_dir_for(drill: Drill, output: Path | None) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output) if output else Path("reports")
    path = base / f"{stamp}-{drill.scenario.name}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{drill.scenario.name}-{n}"
    path.mkdir(parents=True)
    return path


@dataclass
class Workers:
    """Locust master/worker: `local` worker processes started here, `remote` ones expected
    to join from other machines (`drill run FILE --worker HOST`) at `bind`."""

    local: int = 0
    remote: int = 0
    bind: str = "127.0.0.1:0"
    wait: float = 60.0

    @property
    def total(self) -> int:
        return self.local + self.remote


def start_master(drill: Drill, run, workers: Workers, on_record, console: Console):
    """The Locust master, with its workers connected; SetupError when they do not all come."""
    from harness.load.distributed import MasterLoad, split_hostport
    from harness.sip.message import free_port
    host, port = split_hostport(workers.bind)
    port = port or free_port(host, udp=False)
    load = MasterLoad(drill.scenario.load, on_record, f"{host}:{port}", run.bus.publish)
    load.spawn_local_workers(workers.local, drill.path, drill.scenario.target, run.run_dir)
    console.log(f"Locust master on {host}:{port}: waiting for {workers.total} worker(s)")
    got = load.wait_for_workers(workers.total, workers.wait)
    if got < workers.total:
        load.runner.quit()
        load.close(grace=1.0)
        raise SetupError(f"only {got} of {workers.total} Locust workers connected to {host}:{port} "
                         f"within {workers.wait:g}s (local workers log to {run.run_dir}/worker-*.log)")
    run.bus.publish("workers_ready", workers=got, master=f"{host}:{port}")
    return load


def prepare_faults(drill: Drill) -> None:
    """Every planned injector gets ready before the load starts (clients imported, engines
    reached); a dead endpoint is a set-up error, with nothing injected."""
    for pf in drill.faults:
        try:
            pf.build().prepare()
        except FaultError as exc:
            raise SetupError(f"fault {pf.fault_id} cannot be prepared (nothing injected): {exc}") from exc


def run_drill(drill: Drill, output: Path | None, console: Console,
              observers: Sequence = (), workers: Workers | None = None) -> tuple[int, Path | None]:
    """Run a checked drill; returns (exit code, run folder).

    Each observer (a game day, say) gets `attach(run)` once the run folder and
    event bus exist, and `finish(run)` after the drill, before the report.
    """
    from harness.load.sip_load import LoadController, node_mapper  # imports Locust (gevent)

    sandbox_cfg = None
    if drill.scenario.target == "sandbox":
        from harness.lab import sandbox
        opts = drill.scenario.sandbox
        sandbox_cfg = sandbox.SandboxConfig.for_drill(opts.model_dump() if opts else None)
        if all(pid is None for pid in sandbox.status(sandbox_cfg).values()):
            console.log("starting the sandbox hotline (stopped again at the end)")
            sandbox.up(sandbox_cfg)
        else:
            differs = sandbox_cfg.differs_from_running() if opts else []
            if differs:
                console.print("[red]error:[/red] the running sandbox is not the one this scenario "
                              "asks for (" + "; ".join(differs) + "); stop it with `drill lab "
                              "down` and the drill starts its own")
                return EXIT_INPUT, None
            sandbox_cfg = None  # someone else's `drill lab up`: leave it running
    try:
        ok, problems = steady_state(drill.inventory, within=5.0)
        if not ok:
            raise SetupError("target is not healthy before the drill (nothing injected):\n  "
                             + "\n  ".join(problems))
        prepare_faults(drill)
        run_dir = run_dir_for(drill, output)
        shutil.copyfile(drill.path, run_dir / "scenario.yaml")
        (run_dir / "target.json").write_text(json.dumps(drill.inventory.model_dump(), indent=2))
        run = DrillRun(drill, run_dir, new_journal(), run_id=run_dir.name)
        log = open_event_log(run)
        live = LiveView(console, drill.scenario.duration, drill.scenario.metrics.alarm_window)
        run.bus.subscribe(live)
        entries = [e for e in drill.inventory.entry_points
                   if not drill.scenario.load.carriers or e.name in drill.scenario.load.carriers]

        def on_record(rec):
            run.bus.publish("call", ts=rec.ended_at, call=rec.to_dict())

        if workers and workers.total and drill.scenario.load.engine == "sipp":
            log.close()
            shutil.rmtree(run_dir)
            raise SetupError("--workers/--master spread the locust engine; with engine: sipp, "
                             "run one drill per load machine or raise the rate SIPp is given")
        if drill.scenario.load.engine == "sipp":
            from harness.load.sipp_engine import SippLoad
            load = SippLoad(drill.scenario.load, entries, on_record,
                            node_mapper(drill.inventory.node_by_sip()), run_dir,
                            drill.scenario.duration, run.bus.publish)
        elif workers and workers.total:
            try:
                load = start_master(drill, run, workers, on_record, console)
            except SetupError:
                log.close()
                shutil.rmtree(run_dir)  # nothing ran: leave no empty run folder
                raise
        else:
            load = LoadController(drill.scenario.load, entries, on_record=on_record,
                                  node_of=node_mapper(drill.inventory.node_by_sip()),
                                  seed=drill.scenario.seed)

        for ob in observers:
            ob.attach(run)

        def tick(r):
            r.load_in_flight = load.in_flight
            live.tick(r)

        old = install_signal_handlers(run)
        try:
            run.execute(load, on_tick=tick)
        finally:
            errors = run.rollback_all()  # an exception mid-run must not leave a fault behind
            if errors:
                run.bus.publish("rollback_errors", errors=errors)
            restore_signal_handlers(old)
            live.close()
            if hasattr(load, "close"):
                load.close()
        run.check_after()
        for ob in observers:
            ob.finish(run)
        run.bus.publish("run_finished")
        log.close()
        summary = render_run(run_dir)
        return summary["exit_code"], run_dir
    except SetupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return EXIT_INPUT, None
    finally:
        if sandbox_cfg is not None:
            from harness.lab import sandbox
            sandbox.down(sandbox_cfg)
