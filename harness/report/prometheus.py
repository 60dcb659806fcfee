"""Verdicts and key figures as Prometheus text: a textfile-collector file, optionally pushed."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

from harness.ops.http import open_url


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(summary: dict) -> str:
    """The text exposition format (version 0.0.4) of one run."""
    sc = _esc(summary["scenario"]["name"])
    base = f'scenario="{sc}",target_system="{_esc(summary["scenario"]["target"])}"'
    lines = [
        "# HELP hotline_drill_passed 1 if every SLA target of the last run was met.",
        "# TYPE hotline_drill_passed gauge",
        f"hotline_drill_passed{{{base}}} {int(summary['passed'] and not summary['run']['aborted'])}",
        "# HELP hotline_drill_inconclusive 1 if the load generator fell behind: no verdict.",
        "# TYPE hotline_drill_inconclusive gauge",
        f"hotline_drill_inconclusive{{{base}}} {int(bool(summary.get('inconclusive')))}",
        "# HELP hotline_drill_last_run_timestamp_seconds Start of the last run.",
        "# TYPE hotline_drill_last_run_timestamp_seconds gauge",
        f"hotline_drill_last_run_timestamp_seconds{{{base}}} {summary['run']['started_at']:.3f}",
        "# HELP hotline_drill_sla_pass 1 if the SLA target was met.",
        "# TYPE hotline_drill_sla_pass gauge",
    ]
    for v in summary["verdicts"]:
        lines.append(f'hotline_drill_sla_pass{{{base},sla="{v["target"]}"}} {int(v["passed"])}')
    lines += ["# HELP hotline_drill_sla_measured Measured value of the SLA target (ratio or seconds).",
              "# TYPE hotline_drill_sla_measured gauge"]
    for v in summary["verdicts"]:
        if v["measured"] is not None:
            lines.append(f'hotline_drill_sla_measured{{{base},sla="{v["target"]}"}} {v["measured"]:g}')
    lines += ["# HELP hotline_drill_calls Call attempts of the last run by outcome.",
              "# TYPE hotline_drill_calls gauge"]
    for k, n in summary["counts"].items():
        lines.append(f'hotline_drill_calls{{{base},outcome="{k}"}} {n}')
    carriers = ((summary.get("voice") or {}).get("per_carrier") or {}).items()
    carriers = [(c, v) for c, v in carriers if v["calls"]]
    if carriers:
        lines += ["# HELP hotline_drill_mos E-model MOS of the calls on a carrier (quantile over calls).",
                  "# TYPE hotline_drill_mos gauge"]
        for c, v in carriers:
            for q, key in (("0.05", "mos_p5"), ("0.5", "mos_p50")):
                lines.append(f'hotline_drill_mos{{{base},carrier="{_esc(c)}",quantile="{q}"}} {v[key]:g}')
    return "\n".join(lines) + "\n"


def write_textfile(summary: dict, folder: Path) -> Path:
    """Atomically write <folder>/hotline_drill_<scenario>.prom for node_exporter's textfile collector."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"hotline_drill_{summary['scenario']['name'].replace('-', '_')}.prom"
    tmp = path.with_suffix(".prom.tmp")
    tmp.write_text(exposition(summary))
    tmp.replace(path)
    return path


def push(summary: dict, gateway: str, timeout: float = 10.0) -> int:
    """PUT the run's metrics to a Pushgateway, grouped by job and scenario; returns the HTTP status."""
    name = urllib.parse.quote(summary["scenario"]["name"], safe="")
    url = f"{gateway.rstrip('/')}/metrics/job/hotline_drill/scenario/{name}"
    with open_url(url, timeout, data=exposition(summary).encode(), method="PUT",
                  headers={"Content-Type": "text/plain; version=0.0.4"}) as resp:
        return resp.status
