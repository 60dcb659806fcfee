"""The `drill` command.

Exit codes: 0 every SLA target met; 1 a target missed; 2 invalid input or
set-up error (nothing injected); 3 aborted by a signal or abort condition
(faults rolled back); 4 inconclusive: the load generator fell behind its own
schedule, stalled or lost a worker, so no verdict is given.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from harness.ops.exit import EXIT_ABORTED, EXIT_INCONCLUSIVE, EXIT_INPUT, EXIT_INTERNAL, EXIT_LEFT_OPEN
from harness.scenario.yamlload import InputError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
lab_app = typer.Typer(help="Start, stop and inspect the practice hotline (the sandbox).",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail_input(exc: InputError) -> None:
    for p in exc.problems:
        err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
    err.print("nothing was run or injected.")
    raise typer.Exit(EXIT_INPUT)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="scenario files to check")):
    """Check scenario files and their targets without running anything."""
    from harness.runner.plan import load_drill
    bad = 0
    for f in files:
        try:
            d = load_drill(f)
            console.print(f"[green]ok[/green] {f}: {d.scenario.name}, {len(d.faults)} fault(s), "
                          f"target {d.inventory.name}", highlight=False)
            for note in d.notes:
                console.print(f"[yellow]note[/yellow] {note}", highlight=False, soft_wrap=True)
        except InputError as exc:
            bad += 1
            for p in exc.problems:
                err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(EXIT_INPUT)


@app.command("list")
def list_(folder: Path = typer.Argument(Path("scenarios"), help="folder of scenario files")):
    """List the scenarios in a folder with their target, length and faults."""
    from harness.runner.plan import load_drill
    t = Table("file", "name", "target", "duration", "faults", "tags")
    for f in sorted(folder.glob("*.y*ml")):
        try:
            d = load_drill(f)
            t.add_row(f.name, d.scenario.name, d.scenario.target, f"{d.scenario.duration:g}s",
                      ", ".join(p.spec.type + "→" + p.spec.target for p in d.faults) or "—",
                      ", ".join(d.scenario.tags))
        except InputError as exc:
            t.add_row(f.name, "[red]invalid[/red]", "", "", exc.problems[0], "")
    console.print(t)


def print_verdicts(summary: dict) -> None:
    from harness.report.console import print_verdicts as show
    show(summary, console)


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario file"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the timeline; run nothing"),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="folder for the run folder (default: reports/)"),
        target: Optional[str] = typer.Option(None, help="override the scenario's target"),
        textfile_dir: Optional[Path] = typer.Option(
            None, help="also write the verdicts as Prometheus text for node_exporter's textfile collector"),
        pushgateway: Optional[str] = typer.Option(
            None, help="also push the verdicts to this Prometheus Pushgateway URL"),
        grafana: Optional[str] = typer.Option(
            None, help="also annotate this Grafana (its URL): each fault window and the verdict"),
        live_web: Optional[str] = typer.Option(
            None, "--live-web", metavar="[HOST:]PORT", help="also serve the live view as a "
            "web page while the drill runs (loopback unless HOST is given; the URL with its "
            "token is printed)"),
        live_web_token: Optional[str] = typer.Option(
            None, help="the live page's token as ${NAME} (default: a random one per run)"),
        otlp: Optional[str] = typer.Option(
            None, help="also send the drill as one OpenTelemetry trace to this OTLP/HTTP "
                       "collector (e.g. http://127.0.0.1:4318)"),
        grafana_token: Optional[str] = typer.Option(
            None, help="the Grafana service account token, as ${NAME} of an environment "
                       "variable (never on the command line itself)"),
        gate: bool = typer.Option(False, "--gate", help="CI release gate: end with one line "
                                  "`DRILL PASS|FAIL|ABORTED|INCONCLUSIVE name: ...` and exit non-zero on any miss"),
        workers: int = typer.Option(0, "--workers", min=0, help="spread the load over N Locust "
                                    "worker processes started on this machine"),
        master: bool = typer.Option(False, "--master", help="be the Locust master: wait for "
                                    "--expect-workers workers from other machines"),
        master_bind: str = typer.Option("0.0.0.0:5557", help="with --master: where workers connect"),
        expect_workers: int = typer.Option(1, min=1, help="with --master: workers to wait for"),
        worker: Optional[str] = typer.Option(None, "--worker", metavar="HOST[:PORT]",
                                             help="be a Locust worker of the master at HOST: place "
                                                  "calls only, inject nothing, report to the master"),
        rerun_inconclusive: int = typer.Option(
            0, "--rerun-inconclusive", min=0, max=5, envvar="HOTLINE_DRILL_RERUN_INCONCLUSIVE",
            help="when a run is inconclusive (the load generator could not keep its schedule, "
                 "exit 4), run the drill again, up to N more times; every run folder is kept "
                 "and the last run's outcome is the exit code")):
    """Run a drill: load, faults on schedule, rollback, SLA verdicts, report folder.

    Load beyond one machine: `--workers N` starts N local Locust workers;
    `--master` waits for workers started elsewhere with `drill run FILE --worker HOST`
    (same scenario file and target on every machine); the report merges every call."""
    from harness.runner.plan import load_drill
    grafana_secret = env_secret("--grafana-token", grafana_token,
                                "--grafana (the Grafana URL)" if grafana is None else None)
    web = live_web_option(live_web, live_web_token)
    try:
        drill = load_drill(scenario, target)
    except InputError as exc:
        _fail_input(exc)
    if worker:
        from harness.load.distributed import run_worker
        run_worker(drill, worker)
        return
    from harness.runner.drill import Workers, describe_plan, run_drill
    if dry_run:
        for line in describe_plan(drill):
            console.print(line, highlight=False)
        return
    if (workers or master) and not drill.engine.workers:
        err.print(f"[red]error:[/red] --workers/--master spread an engine over worker processes; "
                  f"engine {drill.engine.name} has none: run one drill per load machine or raise "
                  "the rate it is given")
        raise typer.Exit(EXIT_INPUT)
    if master and rerun_inconclusive:
        err.print("[red]error[/red] --rerun-inconclusive with --master: remote workers join one "
                  "run only; run the master again instead (or set HOTLINE_DRILL_RERUN_INCONCLUSIVE=0)")
        raise typer.Exit(EXIT_INPUT)
    spread = None
    if workers or master:
        spread = Workers(local=workers, remote=expect_workers if master else 0,
                         bind=master_bind if master else "127.0.0.1:0")
    code, run_dir = run_drill(drill, output, console, workers=spread, web=web)
    for again in range(rerun_inconclusive):
        if code != EXIT_INCONCLUSIVE or not run_dir:
            break
        summary = record_run(run_dir, output)
        console.print(f"[yellow]run {again + 1} inconclusive[/yellow] ("
                      + "; ".join(summary.get("inconclusive") or []) + f"): {run_dir}; running the "
                      f"drill again ({rerun_inconclusive - again} rerun(s) left)", highlight=False)
        drill = load_drill(scenario, target)  # a fresh plan: nothing carried over from the last run
        code, run_dir = run_drill(drill, output, console, workers=spread, web=web)
    finish_run(code, run_dir, drill.scenario.name, output, textfile_dir, pushgateway, gate,
               grafana=(grafana, grafana_secret) if grafana else None, otlp=otlp)


def record_run(run_dir: Path, output: Optional[Path]) -> dict:
    """Every run goes into the drill history, inconclusive ones too; its summary back."""
    from harness.report import history
    summary = json.loads((run_dir / "summary.json").read_text())
    history.append((output or Path("reports")) / "index.jsonl", summary, run_dir)
    return summary


def env_secret(option: str, value: Optional[str], needs: Optional[str]) -> Optional[str]:
    """A token option's value, taken from the environment variable it names as ${NAME}; exit
    2 before anything runs if it is given without `needs` (its option, when one is needed),
    given literally (a command line is seen by every user of the machine), or not set."""
    if value is None:
        return None
    from harness.ops.secrets import expand_env
    problem = None
    if needs is not None:
        problem = f"{option} without {needs}"
    elif "${" not in value:
        problem = f"{option} takes ${{NAME}}, an environment variable holding the token, not " \
                  "the token itself (a command line is seen by every user of the machine)"
    else:
        try:
            return expand_env(value)
        except KeyError as exc:
            problem = f"{option}: the environment variable {exc.args[0]} is not set"
    err.print(f"[red]error[/red] {problem}")
    raise typer.Exit(EXIT_INPUT)


def live_web_option(bind: Optional[str], token: Optional[str]) -> Optional[tuple]:
    """--live-web and its token, checked before anything runs (exit 2)."""
    secret = env_secret("--live-web-token", token, "--live-web" if bind is None else None)
    if bind is None:
        return None
    from harness.runner.web_view import parse_bind
    try:
        return parse_bind(bind), secret
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(EXIT_INPUT)


def send_trace(run_dir: Path, summary: dict, endpoint: str) -> None:
    """The drill as one OpenTelemetry trace; a collector that refuses it is a warning."""
    from harness.metrics.records import read_events
    from harness.ops.secrets import redact_text
    from harness.report import otel
    try:
        sent = otel.export(otel.spans(summary, read_events(run_dir / "events.jsonl")), endpoint)
        console.print(f"trace of {sent} span(s) sent to {endpoint}", highlight=False)
    except (OSError, ValueError) as exc:
        err.print(redact_text(f"[yellow]warning[/yellow] trace to {endpoint} failed: {exc}"))


def annotate(summary: dict, url: str, token: Optional[str]) -> None:
    """Grafana annotations of the run (`token`: the secret itself, taken from the environment
    before the drill); a refusal is a warning (the drill's verdict stands)."""
    from harness.ops.secrets import redact_text
    from harness.report import grafana
    try:
        sent = grafana.post(summary, url, token)
        console.print(f"{sent} annotation(s) sent to Grafana at {url}", highlight=False)
    except (OSError, ValueError) as exc:
        err.print(redact_text(f"[yellow]warning[/yellow] Grafana annotations to {url} failed: {exc}"))


def finish_run(code: int, run_dir: Optional[Path], name: str, output: Optional[Path],
               textfile_dir: Optional[Path], pushgateway: Optional[str], gate: bool,
               grafana: Optional[tuple] = None, otlp: Optional[str] = None) -> None:
    """After any drill: history, exports, verdicts on screen, the gate line, the exit code."""
    from harness.report.console import gate_line, gate_line_without_report, outcome_line
    if run_dir:
        from harness.report import prometheus
        summary = record_run(run_dir, output)
        if textfile_dir:
            prometheus.write_textfile(summary, textfile_dir)
        if pushgateway:
            try:
                prometheus.push(summary, pushgateway)
            except OSError as exc:
                from harness.ops.secrets import redact_text
                err.print(redact_text(f"[yellow]warning[/yellow] push to {pushgateway} failed: {exc}"))
        if grafana:
            annotate(summary, *grafana)
        if otlp:
            send_trace(run_dir, summary, otlp)
        print_verdicts(summary)
        console.print(outcome_line(code, summary, run_dir), highlight=False)
        if gate:
            print(gate_line(summary, run_dir))
    elif gate:
        print(gate_line_without_report(code, name))
    raise typer.Exit(code)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run folder under reports/"),
           otlp: Optional[str] = typer.Option(None, help="also send the run's trace to this "
                                              "OTLP/HTTP collector")):
    """Rebuild every output of a run from its saved records."""
    from harness.report.render import render_run
    if not (run_dir / "events.jsonl").exists():
        err.print(f"[red]error[/red] {run_dir}: no events.jsonl here; is it a run folder?")
        raise typer.Exit(EXIT_INPUT)
    summary = render_run(run_dir)
    if otlp:
        send_trace(run_dir, summary, otlp)
    print_verdicts(summary)
    raise typer.Exit(summary["exit_code"])


@app.command()
def evidence(run_dir: Path = typer.Argument(..., help="a run folder whose drill captured its "
                                            "packets (scenario `capture:`)"),
             call_id: str = typer.Argument(..., help="the call's Call-ID (calls.csv, report.html)"),
             out: Optional[Path] = typer.Option(None, "-o", "--out", help="the pcap to write "
                                                "(default: RUN_DIR/capture/<Call-ID>.pcap)")):
    """Write one call's packets, as captured, into a pcap file for Wireshark or tshark: its
    SIP, and the RTP headers of its media where the drill captured RTP (`capture: {rtp: true}`)."""
    from harness.report.evidence import write_call_pcap
    from harness.ops.capture import files
    folder = run_dir / "capture"
    if not files(folder):
        err.print(f"[red]error[/red] {run_dir}: no capture here (hint: add `capture: {{}}` to "
                  "the scenario, and run it again)")
        raise typer.Exit(EXIT_INPUT)
    safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in call_id)
    target = out or folder / f"{safe}.pcap"
    count, rtp = write_call_pcap(folder, call_id, target)
    if not count:
        err.print(f"[red]error[/red] no packet of call {call_id} in {folder} (hint: its Call-ID "
                  "as calls.csv gives it; the ring may have dropped the oldest files)")
        target.unlink(missing_ok=True)
        raise typer.Exit(EXIT_INPUT)
    console.print(f"{count} SIP packet(s) of {call_id}" + (f" and {rtp} RTP header(s)" if rtp
                  else "") + f" written to {target}", highlight=False)


@app.command()
def gameday(pool: Path = typer.Option(..., "--pool", help="folder of scenario files to draw from "
                                      "(and its optional gameday.yaml)"),
            window: Optional[str] = typer.Option(None, help="the drill starts and ends inside this "
                                                 "window from now, e.g. 2h (default 2h)"),
            seed: Optional[int] = typer.Option(None, help="repeatable draw (anyone with the seed "
                                               "knows the plan: keep it secret or leave it out)"),
            webhook: Optional[str] = typer.Option(None, help="POST JSON here at armed, started, "
                                                  "aborted and finished"),
            ack_listen: Optional[str] = typer.Option(None, help="HOST:PORT of the acknowledgement "
                                                     "endpoint (default 127.0.0.1:8089)"),
            ack_wait: Optional[str] = typer.Option(None, help="after the drill, wait this long for "
                                                   "a first acknowledgement (default 5m)"),
            max_faults: Optional[int] = typer.Option(None, help="blast radius: faults in the drill"),
            max_nodes: Optional[int] = typer.Option(None, help="blast radius: nodes under a fault "
                                                    "at one time"),
            forbid: list[str] = typer.Option([], help="blast radius: a target never to touch "
                                             "(repeat the option for more)"),
            target: Optional[str] = typer.Option(None, help="override every scenario's target"),
            output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                  help="folder for run folders (default: reports/)"),
            gate: bool = typer.Option(False, "--gate", help="end with the one-line CI summary")):
    """Surprise game day: draw a scenario and a start time at random inside the window, keep
    them sealed (only the plan's SHA-256 is shown) until the drill starts, then run it.

    On-call acknowledges with `drill ack`; the report gives the time to detect and
    reveals the plan, which must match the sealed hash."""
    from harness.gameday.run import run_gameday
    from harness.scenario.gameday import load_gameday, with_options
    try:
        game_day = with_options(load_gameday(pool), window=window, ack_wait=ack_wait,
                                max_faults=max_faults, max_nodes=max_nodes, forbid=forbid,
                                seed=seed, webhook=webhook, ack_listen=ack_listen, target=target)
        if not pool.is_dir():
            raise InputError([f"{pool}: not a folder of scenario files"])
        code, run_dir = run_gameday(pool, game_day, output, console)
    except InputError as exc:
        _fail_input(exc)
    except OSError as exc:  # e.g. the acknowledgement address is taken
        err.print(f"[red]error[/red] {exc} (hint: pick another --ack-listen HOST:PORT); nothing injected")
        raise typer.Exit(EXIT_INPUT)
    finish_run(code, run_dir, "gameday", output, None, None, gate)


@app.command()
def ack(url: str = typer.Option("http://127.0.0.1:8089/ack", help="the game day's "
                                "acknowledgement endpoint (printed when it was armed)"),
        by: str = typer.Option(..., help="who acknowledges (name or rota)"),
        note: str = typer.Option("", help="what you saw"),
        token: Optional[str] = typer.Option(None, envvar="HOTLINE_DRILL_ACK_TOKEN",
                                            help="the game day's token (in its armed notice); "
                                                 "on the machine that runs it, found by itself")):
    """On-call: acknowledge that you have noticed the incident (measures time to detect)."""
    from harness.gameday.ack import send_ack
    if not token:
        token = local_ack_token()
    if not token:
        err.print("[red]error[/red] no token: give --token (it came with the game day's armed "
                  "notice) or run this where the game day runs")
        raise typer.Exit(EXIT_INPUT)
    try:
        answer = send_ack(url, by, note, token)
    except OSError as exc:
        err.print(f"[red]error[/red] could not reach {url}: {exc} (hint: is a game day armed, "
                  "and is this the address it printed?)")
        raise typer.Exit(EXIT_INPUT)
    console.print(f"acknowledged at {time.strftime('%H:%M:%S', time.localtime(answer['ts']))} "
                  f"(game day {answer['gameday_id']})", highlight=False)


def local_ack_token() -> str | None:
    """The newest armed game day's token on this machine (readable by its user only)."""
    from harness.ops.state import state_home
    files = sorted((state_home() / "gamedays").glob("*.ack-token"), key=lambda p: p.stat().st_mtime)
    for path in reversed(files):
        try:
            return json.loads(path.read_text())["token"]
        except (OSError, ValueError, KeyError):
            continue
    return None


REPORTS_OPT = typer.Option(Path("reports"), "--reports", help="the reports folder (its index.jsonl)")


@app.command("history")
def history_(reports: Path = REPORTS_OPT,
             last: int = typer.Option(30, help="how many of the latest runs to show"),
             as_json: bool = typer.Option(False, "--json", help="one JSON object per line")):
    """List past runs with their verdicts (from reports/index.jsonl)."""
    from harness.report import history
    rows = history.read(reports / "index.jsonl")
    if as_json:
        for e in rows[-last:]:
            print(json.dumps(e))
        return
    if not rows:
        console.print(f"no runs recorded in {reports / 'index.jsonl'} yet")
        return
    t = Table("started (UTC)", "scenario", "target", "tags", "result", "missed targets", "run folder")
    for e in rows[-last:]:
        result = "[magenta]aborted[/magenta]" if e["aborted"] else \
            ("[green]passed[/green]" if e["passed"] else "[red]failed[/red]")
        t.add_row(time.strftime("%Y-%m-%d %H:%M", time.gmtime(e["started_at"])), e["scenario"], e["target"],
            ", ".join(e["tags"]), result, ", ".join(e["failed_targets"]) or "—", e["run_dir"])
    console.print(t)


@app.command("calendar")
def calendar_(reports: Path = REPORTS_OPT,
              cadence: list[str] = typer.Option(
                  [], help="TAG=DAYS, e.g. weekly-failover=7 (defaults: monthly-switchover=31, "
                           "quarterly-dr=92, surprise=91)")):
    """Which drills are due or overdue, per scenario tag, from the run history."""
    from harness.report import history
    extra = {}
    for c in cadence:
        tag, _, days = c.partition("=")
        if not days.isdigit():
            err.print(f"[red]error[/red] --cadence {c!r}: write it as TAG=DAYS")
            raise typer.Exit(EXIT_INPUT)
        extra[tag] = int(days)
    rows = history.calendar(history.read(reports / "index.jsonl"), time.time(), extra)
    colours = {"ok": "green", "due soon": "yellow", "overdue": "red", "never run": "red"}
    t = Table("tag", "every", "last run", "last passed", "next due", "status")
    for r in rows:
        t.add_row(r.tag, f"{r.cadence_days} days", history.day(r.last_run), history.day(r.last_passed),
                  history.day(r.due), f"[{colours[r.status]}]{r.status}[/{colours[r.status]}]")
    console.print(t)
    from harness.report import score
    entries = history.read(reports / "index.jsonl")
    for name in score.targets(entries):
        console.print(f"resilience score of {name}: "
                      f"{score.score_target(entries, name, time.time()).score:.0f} / 100 "
                      "(drill score: per category, with its trend)", highlight=False)


SPARK = "▁▂▃▄▅▆▇█"


@app.command("score")
def score_(reports: Path = REPORTS_OPT,
           target: Optional[str] = typer.Option(None, help="one target (default: every target "
                                                "in the history)"),
           category: list[str] = typer.Option([], help="count only these categories (repeat; "
                                              "default all: node loss, carrier, dr, surge, "
                                              "security, journey)"),
           weeks: int = typer.Option(12, min=1, max=104, help="the trend's length"),
           as_json: bool = typer.Option(False, "--json", help="one JSON object per target")):
    """Resilience score per target and per category, from the run history, with its trend.

    Each scenario counts by its latest result for the target: pass 100, fail or abort 50,
    inconclusive 25; worth all of it for its category's cadence (31 days; 92 for DR, surge
    and security), then fading to nothing at twice that. A category is the mean of its
    scenarios (0 when never drilled); the target, the mean of its categories."""
    from harness.report import history, score
    entries = history.read(reports / "index.jsonl")
    names = [target] if target else score.targets(entries)
    if not names:
        console.print(f"no runs recorded in {reports / 'index.jsonl'} yet: nothing to score")
        return
    try:
        got = [score.as_dict(entries, n, time.time(), weeks, category or None) for n in names]
    except ValueError as exc:
        err.print(f"[red]error[/red] --category: {exc}")
        raise typer.Exit(EXIT_INPUT)
    if as_json:
        for g in got:
            print(json.dumps(g))
        return
    for g in got:
        t = Table("category", "score", "scenarios", title=f"{g['target']}: {g['score']:.0f} / 100")
        for name, c in g["categories"].items():
            t.add_row(name, f"{c['score']:.0f}", str(c["scenarios"]) if c["scenarios"]
                      else "[red]not run[/red]")
        console.print(t)
        line = "".join(SPARK[min(7, int(v / 100 * 8))] for _, v in g["trend"])
        console.print(f"trend, {weeks} weeks to today: {line}  "
                      f"({g['trend'][0][1]:.0f} → {g['trend'][-1][1]:.0f})", highlight=False)


@app.command()
def recover(list_only: bool = typer.Option(False, "--list", help="show the faults the journal "
                                           "holds open, undo nothing"),
            forget: Optional[str] = typer.Option(None, "--forget", metavar="FAULT_ID",
                                                 help="close a fault's entry without undoing it "
                                                      "(after repairing it by hand); needs --reason"),
            reason: Optional[str] = typer.Option(None, help="with --forget: what was done by hand"),
            run_id: Optional[str] = typer.Option(None, "--run", help="with --forget: the run the "
                                                 "fault belongs to, when its id is in several")):
    """Roll back every fault the journal still holds open (after the harness was killed).

    `--list` shows them. `--forget FAULT_ID --reason TEXT` closes one put right
    by hand (the reason is journaled): `drill recover` then no longer tries it."""
    from harness.runner.engine import new_journal, recover as do_recover
    journal = new_journal()
    if list_only:
        show_open_faults(journal)
        return
    if forget is not None:
        forget_fault(journal, forget, reason, run_id)
        return
    done = do_recover(journal)
    from harness.runner.targets import all_targets
    for target in all_targets().values():
        for note in target.recover():
            console.print(note, highlight=False)
    if not done:
        console.print(f"nothing to recover: no open fault in {journal.path}", highlight=False)
    for entry, note in done:
        console.print(f"{entry['run_id']} {entry['fault_id']} ({entry['type']} on "
                      f"{entry['target']}): {note}", highlight=False)
    left = journal.open_faults()
    if left:
        err.print(f"[red]{len(left)} fault(s) could not be rolled back[/red]; see above")
        raise typer.Exit(EXIT_LEFT_OPEN)


def show_open_faults(journal) -> None:
    left = journal.open_faults()
    if not left:
        console.print(f"no open fault in {journal.path}", highlight=False)
        return
    t = Table("run", "fault", "type", "target", "injected", "undo recipe")
    for e in left:
        t.add_row(e["run_id"], e["fault_id"], e["type"], e["target"],
                  time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["ts"])),
                  json.dumps(e["recipe"])[:80])
    console.print(t)


def forget_fault(journal, fault_id: str, reason: Optional[str], run_id: Optional[str]) -> None:
    if not reason or not reason.strip():
        err.print("[red]error[/red] --forget needs --reason: say what was done by hand")
        raise typer.Exit(EXIT_INPUT)
    hits = [e for e in journal.open_faults(run_id) if e["fault_id"] == fault_id]
    if not hits:
        err.print(f"[red]error[/red] no open fault {fault_id!r}"
                  + (f" in run {run_id}" if run_id else "") + "; `drill recover --list` shows them")
        raise typer.Exit(EXIT_INPUT)
    if len(hits) > 1:
        err.print(f"[red]error[/red] {fault_id!r} is open in runs "
                  f"{', '.join(e['run_id'] for e in hits)}; say which with --run")
        raise typer.Exit(EXIT_INPUT)
    journal.closed(hits[0]["run_id"], fault_id, f"forgotten: {reason.strip()}")
    console.print(f"{hits[0]['run_id']} {fault_id}: closed without undo ({reason.strip()})",
                  highlight=False)


DOCKER_OPT = typer.Option(False, "--docker", help="the container lab (Kamailio, SIPp) "
                                                    "instead of the sandbox")
SITES_OPT = typer.Option(1, "--sites", min=1, max=2, help="with --docker: 2 is the two-site DR "
                         "lab (keepalived VIP over two Kamailio SBCs, PostgreSQL primary and "
                         "standby, Kamailio acc CDRs); scenarios say `target: lab-dr`")


def _lab(docker: bool, sites: int):
    """The practice hotline `--docker` and `--sites` name (lab/practice.py)."""
    from harness.lab.practice import pick
    try:
        return pick(docker, sites)
    except InputError as exc:
        _fail_input(exc)


@lab_app.command("up")
def lab_up(docker: bool = DOCKER_OPT,
           channels: Optional[int] = typer.Option(None, help="sandbox: calls each PBX node holds at "
                                                  "once before answering 503 (a capacity to find)"),
           pbx_nodes: Optional[int] = typer.Option(None, min=1, max=8, help="sandbox: PBX nodes "
                                                   "behind the SBC (default 2)"),
           health_check: Optional[bool] = typer.Option(None, help="sandbox: --no-health-check "
                                                       "makes an SBC that never marks a dead node "
                                                       "down (default: it checks)"),
           dispatch: Optional[str] = typer.Option(None, help="sandbox: round-robin (default) or "
                                                  "hash (of the Call-ID) to pick a node"),
           sites: int = SITES_OPT,
           sync_replication: Optional[bool] = typer.Option(None, help="two-site lab: the primary "
                                                           "waits for the standby to apply each "
                                                           "commit (remote_apply) instead of "
                                                           "streaming async"),
           advert: Optional[int] = typer.Option(None, min=1, max=10, help="two-site lab: "
                                                "keepalived's advert interval in seconds (default "
                                                "1; the VIP moves after 3)"),
           flaw: list[str] = typer.Option([], "--flaw", metavar="NAME", help="container lab: start its SBC with a "
                                          "known misconfiguration, to rehearse what a drill must "
                                          "catch (repeatable): health-check-flaps (keepalives "
                                          "count their own timeout as a reply), no-failover "
                                          "(a call to a dead node fails, not retried); "
                                          "`drill lab up --docker` without it restores the "
                                          "correct configuration"),
           auth: Optional[bool] = typer.Option(None, "--auth", help="sandbox and container lab: "
                                               "the SBC challenges every new INVITE with 407 "
                                               "(digest authentication, as SBCs guard carrier "
                                               "trunks); the inventory's entry points are given "
                                               "the password (a private file in the state "
                                               "folder)"),
           tls: Optional[bool] = typer.Option(None, "--tls", help="sandbox and container lab: "
                                              "the SBC also serves SIP over TLS on 5061 with a "
                                              "certificate from the lab's own CA, and entry "
                                              "point carrier-tls uses it"),
           srtp: Optional[str] = typer.Option(None, "--srtp", metavar="on|wrong-key",
                                              help="sandbox and container lab: the SBC (the "
                                              "lab's rtpengine) ends SDES-SRTP towards the "
                                              "carriers (the PBX nodes get RTP) and every entry "
                                              "point requires it; wrong-key (sandbox): the SBC "
                                              "sends with a key other than the one it answered "
                                              "(practice for a key mismatch)"),
           dns_ttl: Optional[int] = typer.Option(None, "--dns-ttl", min=0, max=86400,
                                                 help="sandbox: a DNS server for its domain "
                                                 "hotline.sandbox (dnsmasq, node dns) behind a "
                                                 "DNS relay (link dns-path, for dns.* faults), "
                                                 "every record with this TTL, and entry point "
                                                 "carrier-dns locating the SBC by it (RFC 3263)")):
    """Start the practice hotline: the sandbox (local processes) or, with --docker, the container
    lab (one site, or two with --sites 2). An option of another lab is refused (exit 2)."""
    from harness.lab.practice import LabOptions, refuse_others
    lab = _lab(docker, sites)
    opts = LabOptions(channels=channels, pbx_nodes=pbx_nodes, health_check=health_check,
                      dispatch=dispatch, sync_replication=sync_replication, advert=advert,
                      flaws=list(flaw), auth=auth, tls=tls, srtp=srtp, dns_ttl=dns_ttl)
    try:
        refuse_others(lab, opts)
        lab.up(opts, console.print)
    except InputError as exc:
        _fail_input(exc)
    lab_status(docker=docker, sites=sites)
    path = getattr(lab, "inventory_path", None)
    if path:
        console.print(f"target inventory: {path()} (scenarios say `target: {lab.name}`)")


@lab_app.command("status")
def lab_status(docker: bool = DOCKER_OPT, sites: int = SITES_OPT):
    """Show which parts of the practice hotline run."""
    columns, rows = _lab(docker, sites).status()
    t = Table(*columns)
    for row in rows:
        t.add_row(*row)
    console.print(t)


@lab_app.command("down")
def lab_down(docker: bool = DOCKER_OPT, sites: int = SITES_OPT):
    """Stop the practice hotline (only what the project started: by pid or by label)."""
    gone = _lab(docker, sites).down()
    console.print(f"stopped: {', '.join(gone) or 'nothing was running'}")


def main() -> None:
    """The `drill` command. An exception nobody expected is a bug of ours: it gets its own exit
    code (never 1, which means an SLA target was missed) and its traceback is kept."""
    # gevent patches the standard library before the drill imports anything: Locust would
    # patch on import anyway, and psycopg binds its way of waiting when it is first imported
    # (cooperative only if `select` is patched by then). A data probe waiting on a database
    # that vanished with its site would otherwise hold every caller greenlet still.
    from gevent import monkey
    monkey.patch_all()
    import signal

    def stop_now(signum, _frame):  # until a drill installs its own: nothing is in place yet
        raise SystemExit(EXIT_ABORTED)
    signal.signal(signal.SIGTERM, stop_now)
    try:
        app()
    except Exception as exc:  # SystemExit, KeyboardInterrupt: not ours to change
        import traceback
        from harness.ops.state import state_home
        crash = state_home() / f"internal-error-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        crash.write_text(traceback.format_exc())
        err.print(f"[red]internal error[/red] {type(exc).__name__}: {exc}\n"
                  f"this is a bug in hotline-drill, not a verdict on the hotline; the traceback "
                  f"is in {crash}", highlight=False)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
