"""A run on the terminal: the verdict table, each fault and probe in words, voice per carrier
and per node, the outcome line, and the one line a CI gate prints. Reads a summary only."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.metrics.sla import Verdict, fmt
from harness.ops.exit import EXIT_ABORTED, EXIT_INCONCLUSIVE, EXIT_MISSED, EXIT_PASS
from harness.report.explain import fault_sentences, plain, primaries


def print_verdicts(summary: dict, console: Console) -> None:
    t = Table("SLA target", "measured", "threshold", "result", title=f"drill {summary['scenario']['name']}")
    for v in (Verdict(**x) for x in summary["verdicts"]):
        t.add_row(v.target, fmt(v.measured, v.unit) + (f" ({v.detail})" if v.detail else ""),
                  (">= " if v.direction == "min" else "<= ") + fmt(v.threshold, v.unit),
                  "[green]pass[/green]" if v.passed else "[red]FAIL[/red]")
    console.print(t)
    for f in summary["faults"]:
        nodes = f["answered_by_node"]
        console.print(f"fault {f['fault_id']}: answered by node before {nodes['before']} "
                      f"during {nodes['during']} after {nodes['after']}", highlight=False)
        for line in fault_sentences(f, summary):
            console.print("  " + plain(line), highlight=False)
    for d in summary.get("dr") or []:
        console.print(_probe_line(d), highlight=False)
    for name, c in _voice_groups(summary.get("voice") or {}):
        if c["calls"]:
            console.print(_voice_line(name, c), highlight=False)
    journey = (summary.get("journey") or {}).get("overall")
    if journey and journey["calls"]:
        console.print(journey_line(journey), highlight=False)
    if summary.get("registration"):
        console.print(registration_line(summary["registration"]), highlight=False)
    if summary.get("dns"):
        console.print(dns_line(summary["dns"]), highlight=False)
    for line in summary.get("findings", []):
        console.print("finding: " + plain(line), highlight=False)


def dns_line(d: dict) -> str:
    """The DNS figures in one line for the console."""
    parts = [f"dns: {d['calls']} calls by DNS, {d['resolved']} resolved, {d['cache']} from "
             f"the cache (within the TTL), {d['failed']} failed (cause dns)"]
    if d["targets"]:
        parts.append("targets " + ", ".join(f"{t} {n}" for t, n in d["targets"].items()))
    for f in d["per_fault"]:
        parts.append(f"during {f['fault']}: {f['failed']} of {f['calls']} failed, "
                     f"{f['cache']} from the cache")
    return "; ".join(parts)


def registration_line(reg: dict) -> str:
    """The agents' phones in one line: how many stayed registered, and their way back."""
    ira = "n/a" if reg["ira"] is None else f"{reg['ira'] * 100:.1f}%"
    rrd = reg["rrd"]["p95"]
    parts = [f"agents: {reg['agents']} phones, {reg['registered_min']}-{reg['registered_max']} "
             f"registered, {reg['registers']} REGISTERs, IRA {ira}, RRD p95 "
             + ("n/a" if rrd is None else f"{rrd * 1000:.0f} ms")]
    def sec(v):
        return "not yet" if v is None else f"{v:.1f} s"
    if reg.get("overloaded"):
        parts.append(f"{reg['overloaded']} REGISTERs answered 503, "
                     f"{reg['retry_after']} with Retry-After")
    backs = list(reg["per_fault"].items()) + [("the storm", s) for s in reg.get("per_storm", [])]
    for what, b in backs:
        parts.append(f"back after {what}: 50% {sec(b['p50'])}, 90% {sec(b['p90'])}, "
                     f"99% {sec(b['p99'])}" + (f", {len(b['never'])} never" if b["never"] else ""))
    if reg.get("calls"):
        c = reg["calls"]
        parts.append(f"calls to agents: {c['answered']} answered ({c['delivered']} by the "
                     f"agents' own count), {c['no_agent']} found no agent, {c['busy']} busy"
                     + (f", {len(c['mismatched'])} told differently" if c["mismatched"] else ""))
    return "; ".join(parts)


def journey_line(j: dict) -> str:
    """The caller's journey in one line: who reached an agent, how fast, who gave up."""
    def pct(v):
        return "n/a" if v is None else f"{v * 100:.1f}%"

    def sec(v):
        return "n/a" if v is None else f"{v:.1f} s"
    return (f"journey: {j['answered']} of {j['calls']} calls reached an agent "
            f"({pct(j['agent_answer_rate'])}), ASA {sec(j['asa'])}, wait p90 "
            f"{sec(j['wait']['p90'])}, {j['abandoned']} abandoned ({pct(j['abandonment'])}, "
            f"{j['short_abandons']} short abandons left out), service level "
            f"{pct(j['service_level'])} within {j['service_time']:g} s, IVR failures "
            f"{pct(j['ivr_failure'])}")


def _probe_line(d: dict) -> str:
    rpo, back = d["rpo"], d["rto_writes"]
    return (f"data probe {d['probe']}: {d['acked']} writes acknowledged, "
            + (f"{rpo['lost']} lost (RPO {rpo['seconds']:.2f} s)" if rpo
               else "surviving rows unreadable (RPO unknown)")
            + (f"; writes back on {back['new_primary']} {back['seconds']:.2f} s after "
               f"the first fault" if back and back["seconds"] is not None else
               "; writes never came back on another primary" if back else "")
            + (f"; taking writes after the rollback: {primaries(d)}"
               if d.get("primaries") is not None else ""))


def _voice_groups(voice: dict) -> list[tuple[str, dict]]:
    groups = [(name or "(no carrier)", c) for name, c in (voice.get("per_carrier") or {}).items()]
    return groups + [(f"on node {name or '(none)'}", c)
                     for name, c in (voice.get("per_node") or {}).items()]


def _voice_line(name: str, c: dict) -> str:
    up = "n/a" if c["loss_up"] is None else f"{c['loss_up'] * 100:.1f}%"
    rtt = "n/a" if c["rtt_ms"] is None else f"{c['rtt_ms']:.1f} ms"
    silent = "".join(f"; {what} on {c[key]} call(s)" for key, what in
                     (("dead_air", "DEAD AIR"), ("one_way", "ONE-WAY AUDIO"),
                      ("srtp_failed", "NO AUDIO: SRTP AUTHENTICATION FAILED")) if c.get(key))
    return (f"voice {name}: MOS p5 {c['mos_p5']:.2f} p50 {c['mos_p50']:.2f} over {c['calls']} "
            f"calls; loss heard by caller {c['loss_down'] * 100:.1f}%, by hotline {up}; "
            f"round trip {rtt}{silent}")


def outcome_line(code: int, summary: dict, run_dir: Path) -> str:
    """The run's last line on the console: its outcome in words and where the report is."""
    word = {EXIT_PASS: "[green]all SLA targets met[/green]",
            EXIT_MISSED: "[red]SLA target missed[/red]",
            EXIT_ABORTED: "[red]aborted, faults rolled back[/red]",
            EXIT_INCONCLUSIVE: "[yellow]INCONCLUSIVE: " + "; ".join(summary.get("inconclusive") or [])
                               + "[/yellow]"}.get(code, "")
    return f"{word} — report: {run_dir}"


def gate_line(summary: dict, run_dir: Path) -> str:
    """One line for a CI log: the outcome, every missed target measured vs threshold, the report."""
    name = summary["scenario"]["name"]
    if summary["run"]["aborted"]:
        return f"DRILL ABORTED {name}: {summary['run']['abort_reason']} ({run_dir})"
    if summary.get("inconclusive"):
        return f"DRILL INCONCLUSIVE {name}: " + "; ".join(summary["inconclusive"]) + f" ({run_dir})"
    missed = [Verdict(**v).sentence() for v in summary["verdicts"] if not v["passed"]]
    if missed:
        return f"DRILL FAIL {name}: " + "; ".join(missed) + f" ({run_dir})"
    return f"DRILL PASS {name}: {len(summary['verdicts'])} SLA targets met ({run_dir})"


def gate_line_without_report(code: int, name: str) -> str:
    if code == EXIT_ABORTED:
        return f"DRILL ABORTED {name}: stopped before a report was written (exit {code})"
    return f"DRILL ERROR {name}: could not run (exit {code})"
