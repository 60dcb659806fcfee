"""Each failover figure of a fault in words, with the calls that bound it (its evidence).

One source for the console, review.md and report.html, so the three never
tell the same figure differently. The sentences use a little Markdown
(**bold**, `code`): kept as is in review.md, turned into HTML by `md`,
stripped for the console by `plain`.
"""
from __future__ import annotations

import datetime as dt
import re

from markupsafe import Markup, escape


def clock(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"


def md(text: str) -> Markup:
    """The sentences' Markdown as HTML, made safe."""
    html = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", str(escape(text)))
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", html))


def plain(text: str) -> str:
    return text.replace("**", "").replace("`", "")


def primaries(d: dict) -> str:
    """A data probe's servers taking writes after the rollback, in words."""
    rw = d.get("primaries")
    if rw is None:
        return "not checked (one server)"
    if len(rw) > 1:
        return f"SPLIT BRAIN: {', '.join(rw)}"
    return rw[0] if rw else "none"


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} s"


def outage_sentence(f: dict) -> str:
    o = f["outage"]
    if o["start"] is None or o["length"] <= o["resolution"]:
        return "Outage: none — calls kept being answered all through the fault " \
               "(no gap between answers longer than the spacing of attempts)."
    bound = f"after call `{o['last_answered']}`" if o["last_answered"] else "from the fault's start"
    if not o["over"]:
        return f"Outage: **not over** when the records end — no call answered from " \
               f"{clock(o['start'])} ({bound}), {_s(o['length'])} at least."
    return f"Outage (no call answered at all): **{_s(o['length'])}** ± {o['resolution']:.3f} s, " \
           f"{clock(o['start'])} to {clock(o['end'])} — {bound}, until call " \
           f"`{o['first_answered']}` was answered."


def recovery_sentence(f: dict, pdd_good: float) -> str:
    r = f["recovery"]
    rule = f"good calls (answered within {pdd_good:.3f} s) back to at least {r['level']:.0%} " \
           f"of attempts over every {r['window']:g} s window (≥ {r['min_attempts']} attempts)"
    if r["at"] is None:
        return f"Failover time: **never recovered** within the records — {rule} never held again; " \
               f"{r['bad_attempts']} new call(s) after the fault's start were not good."
    if f["failover_time"] == 0:
        return f"Failover time: 0 s — the first new call after the fault's start was already a " \
               f"good one and {rule} held from then on."
    return f"Failover time: **{_s(f['failover_time'])}** — until {rule}; the recovered stretch " \
           f"begins with call `{r['first_good']}`, answered at {clock(r['at'])}; " \
           f"{r['bad_attempts']} new call(s) before it were not good."


def _touched_rule(f: dict) -> str:
    limit = f["shift"].get("slow_limit")
    slow = f"set up slower than {limit:.3f} s (an outlier against the pre-fault set-ups)" \
        if limit is not None else "not a good call"
    return "failed, " + slow + (f", or answered by {', '.join(f['nodes'])}" if f["nodes"] else "")


def shift_sentence(f: dict) -> str:
    s = f["shift"]
    touched = _touched_rule(f)
    strays = s.get("strays", 0)
    left_out = f" {strays} lone slow call(s), as many as before the fault, left out." if strays else ""
    if s["touched"] == 0:
        return f"Traffic shift: 0 s — no new call was touched by the fault ({touched}).{left_out}"
    if s["never"]:
        return f"Traffic shift: **traffic never shifted** — {s['touched']} new call(s) were " \
               f"touched by the fault ({touched}) until it ended; the last was " \
               f"`{s['last_touched']}`, +{s['seconds']:.3f} s after the fault's start, too close " \
               f"to its end (or to the rhythm of touched calls before it) to call the shift " \
               f"over.{left_out}"
    return f"Traffic shift: **{_s(s['seconds'])}** — the last of {s['touched']} new call(s) the " \
           f"fault touched ({touched}) was `{s['last_touched']}`; none after it.{left_out}"


def calls_back_sentence(f: dict) -> str:
    back = f.get("calls_back") or {}
    if back.get("seconds") is None:
        return "Calls back (RTO of calls): **never** — no call placed after the fault's start " \
               "was answered by a node it did not take out."
    since = "after the outage" if f.get("outage_stands_out") else "after the fault's start"
    out = f"Calls back (RTO of calls): **{_s(back['seconds'])}** — the first call placed after " \
          f"the fault's start and answered {since} by a node it did not take out: " \
          f"`{back['call_id']}` on {back['node']}."
    gaps = f.get("interruptions") or {}
    if gaps.get("count") and not (f.get("outage_stands_out") and gaps["count"] == 1):
        longest = gaps["longest"][0]["length"] if gaps.get("longest") else 0.0
        out += f" The hotline went silent {gaps['count']} time(s) during the fault " \
               f"({gaps['total']:.3f} s in all, the longest {longest:.3f} s; " \
               f"{gaps['after_back']} after calls were back): no one silence stands out as the " \
               f"outage, so these are interruptions, not the service going away." \
            if not f.get("outage_stands_out") else \
            f" {gaps['count'] - 1} shorter silence(s) besides the outage ({gaps['after_back']} " \
            f"after calls were back): interruptions, not the service going away again."
    return out


def fault_sentences(f: dict, summary: dict) -> list[str]:
    """Outage, recovery, shift and calls back of fault `f` of a run's `summary`."""
    pdd_good = summary["good_calls"]["pdd_good"]
    out = [outage_sentence(f), recovery_sentence(f, pdd_good), shift_sentence(f)]
    if "calls_back" in f:  # runs made before the figure existed have none
        out.append(calls_back_sentence(f))
    return out
