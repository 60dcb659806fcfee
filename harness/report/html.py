"""report.html: one self-contained file (plotly.js inlined, no network) for people to read.

A timeline chart (per-second offered/answered/failed, active calls, fault
windows shaded and labelled, the alarm-level band), the verdict table,
answered calls per node around each fault, PDD and media distributions, the
queue panel where calls had a journey, the agents' phones where the drill had agents, and
the run's metadata.
"""
from __future__ import annotations

import datetime as dt

from pathlib import Path

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from harness.metrics.journey import occupancy
from harness.metrics.records import CallRecord
from harness.metrics.sla import Verdict, fmt
from harness.metrics.voice import call_voice
from harness.metrics.timeline import per_second
from harness.report.explain import clock, fault_sentences, md, primaries

LEVEL_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "orange": "#ef6c00", "red": "#c62828"}


def timeline_figure(summary: dict, records: list[CallRecord]) -> go.Figure:
    t0, t1 = summary["run"]["started_at"], summary["run"]["ended_at"]
    s = per_second(records, t0, t1)
    fig = go.Figure()
    for name, colour in (("offered", "#546e7a"), ("answered", "#2e7d32"), ("failed", "#c62828")):
        fig.add_trace(go.Scatter(x=s["t"], y=s[name], name=f"{name} / s", mode="lines",
                                 line={"color": colour, "shape": "hv"}))
    fig.add_trace(go.Scatter(x=s["t"], y=s["active"], name="active calls", yaxis="y2",
                             line={"color": "#1565c0", "dash": "dot"}))
    shade_faults(fig, summary)
    for f in summary["faults"]:
        o = f["outage"]
        if o["start"] is not None and o["length"] > o["resolution"]:
            fig.add_vrect(x0=o["start"] - t0, x1=(o["end"] or t1) - t0, fillcolor="#b71c1c",
                          opacity=0.25, line_width=0, annotation_text=f"outage {o['length']:.2f}s",
                          annotation_position="bottom left")
        if f["recovery"]["at"] is not None and f["failover_time"]:
            fig.add_vline(x=f["recovery"]["at"] - t0, line_dash="dash", line_color="#2e7d32",
                          annotation_text="recovered", annotation_position="top right")
    for d in summary.get("dr") or []:  # replication lag, on the active-calls axis' side
        series = [(t - t0, lag) for t, lag in d["lag_series"]]
        if series:
            fig.add_trace(go.Scatter(x=[t for t, _ in series], y=[lag for _, lag in series],
                                     name=f"replication lag of {d['probe']} (s)", yaxis="y3",
                                     mode="lines", line={"color": "#6a1b9a"}))
            fig.update_layout(yaxis3={"title": "replication lag (s)", "overlaying": "y",
                                      "side": "right", "position": 0.97, "rangemode": "tozero",
                                      "showgrid": False})
    for x0, x1, level in alarm_bands(summary["alarm_timeline"]):  # the band along the bottom
        fig.add_shape(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=0.04,
                      fillcolor=LEVEL_COLOURS[level], line_width=0)
    fig.update_layout(
        title="Calls per second, active calls, faults (shaded) and alarm level (band)",
        xaxis={"title": "seconds since the drill started"},
        yaxis={"title": "calls started per second", "rangemode": "tozero"},
        yaxis2={"title": "active calls", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2}, height=460, margin={"t": 60, "b": 40})
    return fig


def alarm_bands(timeline: list[dict]) -> list[tuple[float, float, str]]:
    """The alarm timeline (one point a second) as stretches of one level: (from, to, level).
    One shape per stretch, not per second: a plotly figure copies its shapes on each one
    added, so an 8-hour soak's 28,800 seconds would take hours to draw."""
    bands: list[list] = []
    for p in timeline:
        if bands and bands[-1][2] == p["level"] and abs(bands[-1][1] - (p["t"] - 1)) < 1e-6:
            bands[-1][1] = p["t"]
        else:
            bands.append([p["t"] - 1, p["t"], p["level"]])
    return [tuple(b) for b in bands]


def shade_faults(fig: go.Figure, summary: dict) -> None:
    t0, t1 = summary["run"]["started_at"], summary["run"]["ended_at"]
    for f in summary["faults"]:
        fig.add_vrect(x0=f["started_at"] - t0, x1=(f["ended_at"] or t1) - t0, fillcolor="#ffcdd2",
                      opacity=0.45, line_width=0, annotation_text=f["fault_id"],
                      annotation_position="top left")


def queue_figures(summary: dict, records: list[CallRecord]) -> dict[str, go.Figure]:
    """The queue panel: callers waiting and callers with an agent each second, faults shaded;
    ASA, abandonment and service level per interval, with the service-level target."""
    t0, t1 = summary["run"]["started_at"], summary["run"]["ended_at"]
    occ = occupancy(records, t0, t1)
    queue = go.Figure()
    queue.add_trace(go.Scatter(x=occ["t"], y=occ["waiting"], name="callers waiting",
                               line={"color": "#ef6c00", "shape": "hv"}))
    queue.add_trace(go.Scatter(x=occ["t"], y=occ["with_agent"], name="callers with an agent",
                               line={"color": "#2e7d32", "shape": "hv"}))
    shade_faults(queue, summary)
    queue.update_layout(title="The queue: callers waiting and with an agent, faults shaded",
                        xaxis={"title": "seconds since the drill started"},
                        yaxis={"title": "callers", "rangemode": "tozero"},
                        legend={"orientation": "h", "y": -0.25}, height=380,
                        margin={"t": 60, "b": 40})
    j = summary["journey"]
    rows = j["per_interval"]
    x = [r["from"] - t0 for r in rows]
    per = go.Figure()
    per.add_trace(go.Bar(x=x, y=[r["asa"] for r in rows], name="ASA (s)", yaxis="y2",
                         marker_color="#90caf9", width=j["interval"] * 0.8))
    per.add_trace(go.Scatter(x=x, y=[r["service_level"] for r in rows], mode="lines+markers",
                             name=f"service level ({j['overall']['service_time']:g} s)",
                             line={"color": "#1565c0"}))
    per.add_trace(go.Scatter(x=x, y=[r["abandonment"] for r in rows], mode="lines+markers",
                             name="abandonment", line={"color": "#c62828"}))
    target = next((v["threshold"] for v in summary["verdicts"] if v["target"] == "service_level"),
                  None)
    if target is not None:
        per.add_hline(y=target, line_dash="dash", line_color="#1565c0",
                      annotation_text=f"service-level target {target:.0%}")
    shade_faults(per, summary)
    per.update_layout(title=f"Per {j['interval']:g} s interval: ASA, abandonment, service level",
                      xaxis={"title": "interval start, seconds since the drill started"},
                      yaxis={"title": "share", "range": [0, 1.05]},
                      yaxis2={"title": "ASA (s)", "overlaying": "y", "side": "right",
                              "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.25}, height=380,
                      margin={"t": 60, "b": 40})
    return {"queue": queue, "queue_intervals": per}


def agents_figure(summary: dict) -> go.Figure:
    """The agents' panel: phones registered each second, faults shaded, storms marked."""
    reg, t0 = summary["registration"], summary["run"]["started_at"]
    fig = go.Figure(go.Scatter(x=list(range(len(reg["registered"]))), y=reg["registered"],
                               name="agents registered", line={"color": "#2e7d32", "shape": "hv"}))
    shade_faults(fig, summary)
    for s in reg.get("per_storm", []):
        fig.add_vline(x=s["at"] - t0, line_dash="dash", line_color="#6a1b9a",
                      annotation_text="storm")
    fig.update_layout(title="Agents' phones registered each second, faults shaded",
                      xaxis={"title": "seconds since the drill started"},
                      yaxis={"title": "agents", "range": [0, reg["agents"] * 1.05]},
                      height=340, margin={"t": 60, "b": 40})
    return fig


def resilience_figure(res: dict) -> go.Figure:
    """The target's resilience score at the end of each of the last weeks."""
    when = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t, _ in res["trend"]]
    fig = go.Figure(go.Scatter(x=when, y=[v for _, v in res["trend"]], mode="lines+markers",
                               name="score", line={"color": "#1565c0"}))
    fig.update_layout(title=f"Resilience score of {res['target']}, week by week",
                      yaxis={"title": "score", "range": [0, 100]}, height=300,
                      margin={"t": 50, "b": 40})
    return fig


def distribution_figure(values: list[float], title: str, unit: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#1565c0"))
    fig.update_layout(title=title, xaxis={"title": unit}, yaxis={"title": "calls"}, height=300,
                      margin={"t": 50, "b": 40})
    return fig


def write_html(summary: dict, records: list[CallRecord], path: Path) -> None:
    env = Environment(loader=PackageLoader("harness.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["md"] = md
    answered = [r for r in records if r.answered]
    figures = {
        "timeline": timeline_figure(summary, records),
        "pdd": distribution_figure([r.pdd * 1000 for r in answered if r.pdd is not None],
                                   "Post-dial delay", "ms"),
        "jitter": distribution_figure([r.rtp_jitter_ms for r in answered if r.media],
                                      "RTP jitter (RFC 3550)", "ms"),
        "gap": distribution_figure([r.rtp_max_gap for r in answered if r.media],
                                   "Longest RTP gap per call", "s"),
        "mos": distribution_figure([v.mos for r in answered if (v := call_voice(r))],
                                   "MOS per call (E-model, worse direction)", "MOS"),
    }
    if (summary.get("journey") or {}).get("overall", {}).get("calls"):
        figures.update(queue_figures(summary, records))
    if summary.get("registration"):
        figures["agents"] = agents_figure(summary)
    if summary.get("resilience"):
        figures["resilience"] = resilience_figure(summary["resilience"])
    voice = summary.get("voice") or {}
    voice_rows = ([("all carriers", voice["overall"])] + list(voice["per_carrier"].items())
                  + [(f"node {n or '(none)'}", c) for n, c in voice.get("per_node", {}).items()]
                  + [(f"up during {fid}", c) for fid, c in voice["per_fault"].items()]
                  if voice else [])
    divs = {k: f.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{k}")
            for k, f in figures.items()}
    html = env.get_template("report.html.j2").render(
        s=summary, verdicts=[Verdict(**v) for v in summary["verdicts"]], charts=divs,
        plotly_js=get_plotlyjs(), fmt=fmt, clock=clock, voice_rows=voice_rows,
        explain=lambda f: fault_sentences(f, summary), primaries=primaries)
    path.write_text(html)
