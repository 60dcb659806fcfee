"""`drill run`: a checked drill through its phases, in the order a reader expects.

prepare the target -> steady state before -> faults prepared -> run folder ->
load + timeline -> rollback -> steady state after -> verdicts and outputs.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.console import Console

from harness.load.engine import LoadEngine
from harness.load.entry_calls import locator
from harness.ops import OpsError, SetupError
from harness.ops.capture import Capture
from harness.ops.exit import EXIT_ABORTED, EXIT_INPUT
from harness.metrics.sla import TARGETS, fmt
from harness.ops.secrets import redact, redact_text
from harness.report.render import summarize, write_outputs
from harness.runner.abort import describe
from harness.runner.engine import DrillRun, Interrupted, StopSignals, new_journal, open_event_log
from harness.runner.live import LiveView
from harness.runner.web_view import WebView
from harness.runner.plan import Drill
from harness.runner.probes import ProbeSet
from harness.runner.steady import media_checked, steady_state
from harness.scenario.inventory import split_address
from harness.sip.rfc3263 import DnsFailure


def describe_plan(drill: Drill) -> list[str]:
    """The dry-run timeline: each fault, on what, when, for how long, and how it is undone."""
    sc = drill.scenario
    lines = [f"drill {sc.name} against target '{drill.inventory.name}', {sc.duration:g}s",
             f"  {sc.load.start:g}s: load ({sc.load.engine} engine) starts at "
             f"{sc.load.calls_per_second:g} calls/s, hold {sc.load.hold:g}s, "
             f"RTP on {sc.load.rtp_share:.0%} of calls, via "
             f"{', '.join(e.name for e in drill.inventory.carriers(sc.load.carriers))}"]
    if drill.target is not None:
        lines += [f"  {line}" for line in drill.target.describe(drill.target_options)]
    if sc.load.capacity_search:
        cs = sc.load.capacity_search
        lines.append(f"  capacity search: +{cs.step:g} calls/s every {cs.step_duration:g}s up to "
                     f"{cs.max:g}; the drill ends at the first step that misses a per-call target")
    steps = [(c.at, f"load changes to {c.calls_per_second:g} calls/s"
                    + (f" over {c.ramp:g}s" if c.ramp else "")) for c in sc.load.shape]
    for planned in drill.faults:
        until = f"for {planned.spec.duration:g}s" if planned.spec.duration is not None else "until the load ends"
        outside = ("; ACTS OUTSIDE THE INVENTORY: what it touches is not checked against the "
                   "allowlist" if planned.injector.acts_outside_inventory else "")
        steps.append((planned.spec.at, f"{planned.fault_id}: {planned.build().describe()}; {until}"
                                       f"{outside}"))
    lines += [f"  {at:g}s: {text}" for at, text in sorted(steps, key=lambda x: x[0])]
    for rule in sc.abort_when:
        lines.append(f"  always: abort (roll back everything, exit 3) if {describe(rule)}")
    lines.append(f"  {sc.duration:g}s: load stops; every fault still active is rolled back; "
                 "steady state checked")
    lines += [f"  probe {line}" for line in describe_probes(sc)]
    lines += describe_targets(sc)
    lines += [f"note: {note}" for note in drill.notes]
    return [redact_text(line) for line in lines]


def describe_probes(sc) -> list[str]:
    out = []
    for p in sc.probes:
        if p.type == "prometheus":
            out.append(f"{p.id}: PromQL `{p.query}` on {p.url}, every {p.every:g}s")
            continue
        line = (f"{p.id}: {p.type} heartbeat writes, {p.rate:g}/s through `{p.dsn}` (each given "
                f"up after {p.write_timeout:g}s)")
        if p.standby:
            line += f"; replication lag read from `{p.standby}`"
        if p.cdr:
            line += "; every answered call's CDR looked up after the drill"
        out.append(line)
    return out


def describe_targets(sc) -> list[str]:
    """Every SLA target the run is judged by, with its threshold; defaults marked as such."""
    given = sc.sla.model_fields_set
    on, off = [], []
    for name, t in TARGETS.items():
        direction, unit, value = t.direction, t.unit, getattr(sc.sla, name, None)
        if value is None:
            off.append(name)
            continue
        if unit == "bool":
            on.append(f"{name} required" + ("" if name in given else " (default)"))
            continue
        op = ">=" if direction == "min" else "<="
        shown = fmt(float(value), unit) + ("" if unit in ("ratio", "s", "MOS") else f" {unit}")
        on.append(f"{name} {op} {shown}" + ("" if name in given else " (default)"))
    return [f"  judged by: {', '.join(on)}",
            f"  not judged (null or no default; set them under sla:): {', '.join(off)}"]


def run_dir_for(drill: Drill, output: Path | None) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output) if output else Path("reports")
    path = base / f"{stamp}-{drill.scenario.name}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{drill.scenario.name}-{n}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)  # events and reports may name the staging system: its owner's only
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


def start_master(drill: Drill, run, workers: Workers, on_record, console: Console) -> LoadEngine:
    """The Locust master, with its workers connected; SetupError when they do not all come."""
    from harness.load.distributed import MasterLoad, split_hostport
    from harness.sip.message import listener_port
    host, port = split_hostport(workers.bind)
    port = port or listener_port(host, udp=False)
    load = MasterLoad(drill.scenario.load, on_record, f"{host}:{port}", run.bus.publish,
                      drill.inventory.entry_points)
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


def make_load(drill: Drill, run: DrillRun, workers: Workers | None, console: Console) -> LoadEngine:
    """The load engine the scenario and the command line ask for; every call it ends is
    published on the run's bus."""
    from harness.load.engines import LoadContext
    from harness.load.agents import dialled
    from harness.load.sip_load import node_mapper
    sc, inv = drill.scenario, drill.inventory
    callees = tuple(dialled(sc))

    def on_record(rec):
        run.bus.publish("call", ts=rec.ended_at, call=rec)

    if workers and workers.total:  # the CLI let --workers through only for an engine with them
        return start_master(drill, run, workers, on_record, console)
    return drill.engine.make(LoadContext(sc.load, inv.carriers(sc.load.carriers), on_record,
                                         node_mapper(inv.node_by_sip(), callees), run.run_dir,
                                         sc.duration, run.bus.publish, sc.seed, callees))


def target_up(drill: Drill, console: Console, stop: StopSignals):
    """The target kept up for the drill (the sandbox is started and stopped again); a signal
    while it starts cuts the start short."""
    if drill.target is None:
        return nullcontext()
    return drill.target.running(drill.target_options, console.log, stop.event.is_set)


def check_steady_before(drill: Drill, stop: StopSignals) -> None:
    ok, problems = steady_state(drill.inventory, within=5.0, stop=stop.event.is_set,
                                **media_checked(drill.scenario.load))
    stop.check()  # a signal cut the check short: stopped, not unhealthy
    if not ok:
        raise SetupError("target is not healthy before the drill (nothing injected):\n  "
                         + "\n  ".join(problems))


def prepare_faults(drill: Drill) -> None:
    """Every planned injector gets ready before the load starts (clients imported, engines
    reached); a dead endpoint is a set-up error, with nothing injected."""
    for planned in drill.faults:
        try:
            planned.build().prepare()
        except OpsError as exc:
            raise SetupError(f"fault {planned.fault_id} cannot be prepared (nothing injected): {exc}") from exc


def check_probes(drill: Drill, stop: StopSignals) -> None:
    """Every data probe can write (its scratch table made) before anything is injected."""
    if drill.scenario.probes:
        problems = ProbeSet(drill.scenario.probes, "check", stop.event).check()
        stop.check()  # cut short by a signal: stopped, not unready
        if problems:
            raise SetupError("data probes not ready (nothing injected):\n  " + "\n  ".join(problems))


def open_run(drill: Drill, output: Path | None) -> DrillRun:
    """The run folder (scenario and target copied in), the journal and events.jsonl."""
    run_dir = run_dir_for(drill, output)
    # copies for `drill report`, credentials masked (the scenario's own file keeps them)
    (run_dir / "scenario.yaml").write_text(redact_text(drill.path.read_text()))
    (run_dir / "target.json").write_text(json.dumps(redact(drill.inventory.model_dump()), indent=2))
    run = DrillRun(drill, run_dir, new_journal(), run_id=run_dir.name)
    run.log = open_event_log(run)
    return run


def capture_endpoints(drill: Drill) -> list[tuple[str, int]]:
    """The SIP addresses a capture is filtered to: the entry points (and their fallbacks, and
    what DNS gives for those located by it), the nodes, the registrar."""
    import socket
    inv, found = drill.inventory, []
    for e in inv.entry_points:
        if e.located_by_dns:
            try:
                found += [(t.host, t.port) for t in locator(e).targets()[0]]
            except DnsFailure:
                pass
        found += [split_address(a) for a in [e.address, *e.fallback] if a]
    found += [split_address(n.sip) for n in inv.nodes if n.sip]
    if inv.registrar is not None:
        found.append(split_address(inv.registrar.address))
    return sorted({(socket.gethostbyname(h), p) for h, p in found})


def start_capture(drill: Drill, run: DrillRun, console: Console):
    """The scenario's `capture:` started, or None; a capture that cannot start is said and
    left out (the drill goes on: the capture is evidence, not the drill)."""
    spec = drill.scenario.capture
    if spec is None:
        return None
    cap = Capture(run.run_dir / "capture", capture_endpoints(drill), spec.rtp, spec.max_mb,
                  drill.scenario.duration + 120)
    try:
        cap.start()
    except OpsError as exc:
        console.print(f"[yellow]warning[/yellow] no capture: {exc}")
        return None
    return cap


def discard_run(run: DrillRun) -> None:
    """Nothing ran: leave no empty run folder."""
    run.log.close()
    shutil.rmtree(run.run_dir)


def run_timeline(run: DrillRun, load: LoadEngine, live: LiveView, web=None) -> None:
    """Load and faults on schedule; whatever happens, every fault is rolled back after."""
    def tick(r):
        r.load_in_flight = load.in_flight
        queue_now = getattr(load, "queue_now", None)  # engines that run journeys
        r.load_queue = queue_now() if queue_now and run.drill.scenario.load.journey else None
        live.tick(r)
        if web is not None:
            web.tick(r)

    try:
        run.execute(load, on_tick=tick)
    finally:
        try:
            run.stop_probes()  # an exception mid-run: what the probes saw is still published
        finally:
            errors = run.rollback_all()  # an exception mid-run must not leave a fault behind
        if errors:
            run.bus.publish("rollback_errors", errors=errors)
        live.close()
        if web is not None:
            web.close()
        load.close()


def start_web_view(drill: Drill, run: DrillRun, console: Console, web: tuple | None):
    """The live web page (`--live-web`), subscribed to the run's events, its URL printed."""
    if web is None:
        return None
    bind, token = web
    sc = drill.scenario
    try:
        view = WebView(sc.name, sc.duration, sc.metrics.alarm_window, bind, token)
    except OSError as exc:
        raise SetupError(f"--live-web {bind[0]}:{bind[1]}: cannot listen there ({exc.strerror})")
    run.bus.subscribe(view)
    console.print(f"live view: {view.url}", highlight=False, soft_wrap=True)
    return view


def run_drill(drill: Drill, output: Path | None, console: Console,
              observers: Sequence = (), workers: Workers | None = None,
              web: tuple | None = None) -> tuple[int, Path | None]:
    """Run a checked drill; returns (exit code, run folder).

    Each observer (a game day, say) gets `attach(run)` once the run folder and
    event bus exist, and `finish(run)` after the drill, before the report.
    """
    # Locust patches the stdlib for gevent when imported: before any client, socket or thread
    import harness.load.sip_load  # noqa: F401
    try:
        with StopSignals() as stop:
            with target_up(drill, console, stop):
                stop.check()
                check_steady_before(drill, stop)
                prepare_faults(drill)
                check_probes(drill, stop)
                stop.check()  # the last moment a signal leaves no run folder behind
                run = open_run(drill, output)
                stop.attach(run)  # from here a signal aborts the run: rollback first, then the load
                live = LiveView(console, drill.scenario.duration, drill.scenario.metrics.alarm_window)
                run.bus.subscribe(live)
                try:
                    view = start_web_view(drill, run, console, web)
                    load = make_load(drill, run, workers, console)
                except SetupError:
                    discard_run(run)
                    raise
                for ob in observers:
                    ob.attach(run)
                capture = start_capture(drill, run, console)
                try:
                    run_timeline(run, load, live, view)
                finally:
                    if capture is not None:
                        capture.stop()
                run.check_after()
                for ob in observers:
                    ob.finish(run)
                run.bus.publish("run_finished")
                run.log.close()
                run.records.clear()  # the report reads them back from events.jsonl: not twice
            summary = write_report(run.run_dir, stop, console)
        # no summary: stopped while its figures were computed (said on the console)
        return summary["exit_code"], run.run_dir if summary.get("run") else None
    except SetupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return EXIT_INPUT, None
    except Interrupted as exc:
        console.print(f"[yellow]stopped before the drill began ({exc}); nothing was "
                      "injected[/yellow]")
        return EXIT_ABORTED, None


def write_report(run_dir: Path, stop: StopSignals, console: Console) -> dict:
    """Every output of the run, from its saved records. A signal now (faults are rolled back,
    events.jsonl complete) stops the writing: the figures' computation at once, the files at
    the next one; what is missing is named, and `drill report` writes it later (exit 3)."""
    rebuild = f"`drill report {run_dir}` writes it from the saved records"
    began = time.time()  # a signal before the report ended the drill, and is in its records
    try:
        with stop.raising():  # pure computation: nothing half-written if it is cut short
            summary, records = summarize(run_dir)
    except Interrupted as exc:
        console.print(f"[yellow]stopped while the report was computed ({exc}); no report "
                      f"written; {rebuild}[/yellow]")
        return {"exit_code": EXIT_ABORTED}
    summary = write_outputs(run_dir, redact(summary), records, lambda: stop.since(began))
    stopped = summary.get("report_stopped")
    if stopped:
        console.print(f"[yellow]stopped while the report was written ({stopped['reason']}): not "
                      f"written {', '.join(stopped['not_written'])}; {rebuild}[/yellow]",
                      highlight=False)
    return summary
