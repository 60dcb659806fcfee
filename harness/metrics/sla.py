"""SLA targets, each declared once, and their verdicts. Pure.

A target is one `@target(...)` declaration over its measure function: its direction, unit,
default and README wording live here and nowhere else. The scenario schema (`SlaSpec`), the
dry run's list, `evaluate` and README's table of targets are all derived from `TARGETS`
(tests/unit/metrics/test_sla_catalogue.py holds them together).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Measured:
    """What a measure function found: the value (None: nothing could be measured), a short
    detail for the reader, and whether a missing value passes because there was nothing the
    target judges (no fault, no call with media)."""
    value: float | None
    detail: str = ""
    nothing_to_judge: bool = False


@dataclass
class Figures:
    """A run's figures that the targets read (metrics/evaluate.py computes them)."""
    attempts: int = 0
    answered: int = 0
    answer_rate: float | None = None
    pdd: dict = field(default_factory=lambda: {"p95": None})
    dropped_call_rate: float | None = None
    media: dict = field(default_factory=lambda: {"loss": None, "calls": 0})
    per_fault: list[dict] = field(default_factory=list)
    voice: dict | None = None
    sessions: dict | None = None
    dr: list[dict] = field(default_factory=list)
    steady_state_after: bool | None = None
    time_to_detect: float | None = None
    first_ack_by: str | None = None
    capacity: dict | None = None
    journey: dict | None = None
    registration: dict | None = None


@dataclass(frozen=True)
class Target:
    name: str
    direction: str  # "min" (measured >= threshold) or "max" (measured <= threshold)
    unit: str       # ratio, s, MOS, bool, or a count's noun (writes, CDRs, databases, calls/s)
    default: float | None  # None: off unless the scenario sets it
    wording: str    # what is measured, as README's table says it
    measure: Callable[[Figures], Measured]
    judged_when: str = ""  # a default that holds only where this is true (README says so)


TARGETS: dict[str, Target] = {}


def target(name: str, direction: str, unit: str, default: float | None, wording: str,
           judged_when: str = ""):
    """Declare an SLA target over the function that measures it."""
    def register(measure: Callable[[Figures], Measured]):
        assert name not in TARGETS, f"SLA target {name} declared twice"
        TARGETS[name] = Target(name, direction, unit, default, wording, measure, judged_when)
        return measure
    return register


def _share(pair: tuple[int, int]) -> float | None:
    return pair[0] / pair[1] if pair[1] else None


def _sum_pairs(pairs) -> tuple[int, int]:
    pairs = list(pairs)
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


# --- calls -----------------------------------------------------------------------------

@target("answer_rate", "min", "ratio", 0.90, "answered / attempts")
def _answer_rate(f: Figures) -> Measured:
    return Measured(f.answer_rate, f"{f.answered}/{f.attempts} attempts")


@target("failover_time", "max", "s", 30.0, "worst failover time over the faults: until good "
        "calls are back at the pre-fault share")
def _failover_time(f: Figures) -> Measured:
    times = [x["failover_time"] for x in f.per_fault]
    worst = None if None in times else max(times, default=None)
    detail = "never recovered" if f.per_fault and worst is None \
        else f"worst of {len(f.per_fault)} fault(s)"
    return Measured(worst, detail, not f.per_fault)


# the hotline playbook's "switch within 30 s"
@target("traffic_shift", "max", "s", 30.0, "fault start to the last new call touched by it; "
        "\"never\" (still touched at the fault's end) fails")
def _traffic_shift(f: Figures) -> Measured:
    if not f.per_fault:
        return Measured(None, "", True)
    never = [x["fault_id"] for x in f.per_fault if x["shift"]["never"]]
    if never:
        return Measured(None, f"traffic never shifted away during {', '.join(never)}")
    return Measured(max(x["traffic_shift"] for x in f.per_fault))


@target("outage", "max", "s", None, "longest time with no call answered, per fault")
def _outage(f: Figures) -> Measured:
    return Measured(max((x["outage"]["length"] for x in f.per_fault), default=None),
                    f"longest of {len(f.per_fault)} fault(s)", not f.per_fault)


@target("dropped_call_rate", "max", "ratio", 0.01, "answered calls that ended abnormally")
def _dropped(f: Figures) -> Measured:
    return Measured(f.dropped_call_rate, "", True)


@target("call_continuity", "min", "ratio", None, "calls up at a fault that ended normally")
def _continuity(f: Figures) -> Measured:
    pair = _sum_pairs(x["continuity"] for x in f.per_fault)
    return Measured(_share(pair), f"{pair[0]}/{pair[1]} calls", pair[1] == 0)


@target("bystander_continuity", "min", "ratio", None, "the same, leaving out calls on the "
        "faulted node")
def _bystanders(f: Figures) -> Measured:
    pair = _sum_pairs(x["bystander_continuity"] for x in f.per_fault)
    return Measured(_share(pair), f"{pair[0]}/{pair[1]} calls", pair[1] == 0)


@target("pdd_p95", "max", "s", None, "95th percentile post-dial delay")
def _pdd_p95(f: Figures) -> Measured:
    return Measured(f.pdd["p95"], "" if f.pdd["p95"] is not None else "no call answered")


@target("media_loss", "max", "ratio", None, "RTP packets lost over all calls with media")
def _media_loss(f: Figures) -> Measured:
    return Measured(f.media["loss"], f"{f.media['calls']} calls with media", f.media["calls"] == 0)


# --- voice (metrics/voice.py) ------------------------------------------------------------

def _media_calls(f: Figures) -> int:
    return f.voice["overall"]["calls"] if f.voice else 0


def _silent(voice: dict, key: str) -> str:
    """`k of n calls with media`, and the nodes whose calls were silent, worst first."""
    o = voice["overall"]
    nodes = sorted(((n or "(no node)", c[key], c["calls"]) for n, c in voice["per_node"].items()
                    if c[key]), key=lambda x: -x[1] / x[2])
    where = "; ".join(f"{n}: {k} of {m}" for n, k, m in nodes)
    return f"{o[key]} of {o['calls']} calls with media" + (f" ({where})" if where else "")


def _voice(key: str, detail: Callable[[dict], str] | None = None):
    def measure(f: Figures) -> Measured:
        n = _media_calls(f)
        if not n:
            return Measured(None, "0 calls with media", True)
        return Measured(f.voice["overall"][key],
                        detail(f.voice) if detail else f"{n} calls with media")
    return measure


# 3.1: the E-model's edge of "many users dissatisfied" (G.107 Annex B, R 60)
target("mos_p5", "min", "MOS", 3.1, "the MOS 95 % of media calls reach")(_voice("mos_p5"))
target("mos_p50", "min", "MOS", None, "the median MOS of media calls")(_voice("mos_p50"))
# silence: a caller who hears nothing is not a poor call but a broken one
target("dead_air", "max", "ratio", 0.01, "media calls whose caller heard nothing, or nothing "
       "for longer than metrics.media_gap")(
    _voice("dead_air_share", lambda v: _silent(v, "dead_air")))
target("one_way_audio", "max", "ratio", 0.01, "media calls with audio one way only")(
    _voice("one_way_share", lambda v: _silent(v, "one_way")))


@target("srtp_failed", "max", "ratio", 0.01, "media calls whose far end's SRTP packets failed "
        "authentication (a key mismatch: audio came and could not be read)",
        judged_when="the calls carry SRTP")
def _srtp_failed(f: Figures) -> Measured:
    if not f.voice or not f.voice["overall"]["srtp_calls"]:
        return Measured(None, "no call with SRTP media", True)
    return Measured(f.voice["overall"]["srtp_failed_share"], _silent(f.voice, "srtp_failed"))


# --- the caller's journey (metrics/journey.py) ---------------------------------------------

def _journey(key: str, pick=lambda o, key: o[key]):
    def measure(f: Figures) -> Measured:
        o = (f.journey or {}).get("overall") or {}
        if not o.get("calls"):
            return Measured(None, "no call with a journey", True)
        return Measured(pick(o, key), f"{o['answered']} answered by an agent, {o['abandoned']} "
                        f"abandoned, of {o['calls']} calls with a journey")
    return measure


target("agent_answer_rate", "min", "ratio", 0.90, "calls with a journey an agent answered (the "
       "connection rate: the IVR's 200 is not an answer)", judged_when="the calls have a journey")(
    _journey("agent_answer_rate"))
target("asa", "max", "s", None, "average speed of answer: the mean wait of the calls an agent "
       "answered")(_journey("asa"))
target("abandonment", "max", "ratio", None, "callers who gave up waiting (after "
       "metrics.short_abandon) over those and the calls an agent answered")(_journey("abandonment"))
target("service_level", "min", "ratio", None, "calls an agent answered within "
       "metrics.service_time over answered and abandoned")(_journey("service_level"))
target("wait_p90", "max", "s", None, "the 90th percentile wait of the calls an agent answered")(
    _journey("p90", lambda o, key: o["wait"][key]))
target("ivr_failure", "max", "ratio", None, "calls with a journey whose IVR prompt never came")(
    _journey("ivr_failure"))
target("turned_away", "max", "ratio", None, "calls with a journey the IVR turned away (a "
       "callback offer, the failure announcement) over all calls with a journey")(
    _journey("turned_away", lambda o, key: o[key] / o["calls"]))


# --- agents' phones (metrics/registration.py) ---------------------------------------------

def _reregistration(f: Figures) -> Measured:
    reg = f.registration or {}
    if not reg.get("per_fault"):
        return Measured(None, "no fault with agents registering", True)
    worst = [b["p90"] for b in reg["per_fault"].values()]
    never = sum(len(b["never"]) for b in reg["per_fault"].values())
    return Measured(None if None in worst else max(worst),
                    f"90 % of {reg['agents']} agents back after the worst fault"
                    + (f"; {never} never came back" if never else ""))


target("reregistration_p90", "max", "s", None, "seconds from a fault until 90 % of the "
       "agents' phones were registered again (a 200 to a REGISTER sent after it)")(
    _reregistration)


def _ira(f: Figures) -> Measured:
    reg = f.registration or {}
    if not reg:
        return Measured(None, "no agents", True)
    return Measured(reg["ira"], f"of {reg['registers']} REGISTERs of {reg['agents']} agents")


target("ira", "max", "ratio", None, "RFC 6076 ineffective registration attempts: REGISTERs "
       "with no answer, 408, 500, 503 or 504, over all")(_ira)


# --- RFC 6076 and E.411 (metrics/sessions.py) ----------------------------------------------

def _session(key: str):
    def measure(f: Figures) -> Measured:
        s = f.sessions or {}
        n = s.get("attempts", 0)
        if key in ("srd", "sdd"):
            m = s.get(key) or {"p95": None, "n": 0}
            return Measured(m["p95"], f"{m['n']} " + ("answered INVITEs" if key == "srd"
                                                      else "BYEs"), m["n"] == 0)
        source = f"E.411 over {n} attempts" if key in ("asr", "ner") \
            else f"RFC 6076 over {n} INVITEs"
        return Measured(s.get(key), source, n == 0)
    return measure


for _key, _direction, _wording in (
        ("ser", "min", "session establishment ratio (RFC 6076)"),
        ("seer", "min", "session establishment effectiveness ratio (RFC 6076)"),
        ("isa", "max", "ineffective session attempts (RFC 6076)"),
        ("scr", "min", "session completion ratio (RFC 6076)"),
        ("asr", "min", "answer seizure ratio (E.411)"),
        ("ner", "min", "network effectiveness ratio (E.411)")):
    target(_key, _direction, "ratio", None, _wording)(_session(_key))
target("srd_p95", "max", "s", None, "95th percentile session request delay (RFC 6076)")(
    _session("srd"))
target("sdd_p95", "max", "s", None, "95th percentile session disconnect delay (RFC 6076)")(
    _session("sdd"))


# --- disaster recovery (metrics/dr.py), from data probes -------------------------------------

_NO_PROBE = Measured(None, "no data probe in this scenario")


def _rpo_parts(f: Figures) -> tuple[list[dict], list[str], str]:
    known = [d["rpo"] for d in f.dr if d["rpo"] is not None]
    unknown = [d["probe"] for d in f.dr if d["rpo"] is None]
    detail = f"surviving rows unreadable for {', '.join(unknown)}" if unknown else \
        f"{sum(r['lost'] for r in known)} of {sum(r['acked'] for r in known)} acknowledged writes lost"
    return known, unknown, detail


@target("rpo", "max", "s", None, "how old the surviving data was when the failure struck")
def _rpo(f: Figures) -> Measured:
    if not f.dr:
        return _NO_PROBE
    known, unknown, detail = _rpo_parts(f)
    return Measured(None if unknown else max(r["seconds"] for r in known), detail)


@target("rpo_writes", "max", "writes", None, "acknowledged writes lost")
def _rpo_writes(f: Figures) -> Measured:
    if not f.dr:
        return _NO_PROBE
    known, unknown, detail = _rpo_parts(f)
    return Measured(None if unknown else float(sum(r["lost"] for r in known)), detail)


@target("rto", "max", "s", None, "calls back (the worst fault's first answer through a node it "
        "did not take out) and writes back on a new primary, the later of the two")
def _rto(f: Figures) -> Measured:
    calls_back = [x["calls_back"]["seconds"] for x in f.per_fault]
    writes_back = [d["rto_writes"]["seconds"] for d in f.dr if d["rto_writes"]]
    parts = [*calls_back, *writes_back]
    return Measured(None if not parts or None in parts else max(parts),
                    "calls and writes back" if writes_back else
                    "calls back" if f.dr else "calls back (no data probe)",
                    not f.dr and not calls_back)


@target("replication_lag_p99", "max", "s", None, "99th percentile replication lag, read from "
        "the standby")
def _lag(f: Figures) -> Measured:
    if not f.dr:
        return _NO_PROBE
    lags = [d["lag"]["p99"] for d in f.dr if d["lag"]["p99"] is not None]
    return Measured(max(lags) if lags else None,
                    f"{sum(d['lag']['samples'] for d in f.dr)} samples")


@target("cdrs_lost", "max", "CDRs", None, "answered calls without a CDR on the surviving "
        "database (a probe's `cdr:` check)")
def _cdrs_lost(f: Figures) -> Measured:
    if not f.dr:
        return _NO_PROBE
    checks = [d["cdr"] for d in f.dr if d.get("cdr")]
    if not checks:
        return Measured(None, "no CDR check in the data probes")
    lost = sum(c["lost"] for c in checks)
    return Measured(float(lost), f"{lost} of {sum(c['checked'] for c in checks)} answered "
                                 "calls without a CDR")


# a split brain is never acceptable: judged wherever a probe names several servers
@target("primaries", "max", "databases", 1.0, "servers of a probe's `dsn` taking writes after "
        "the rollback (2: a split brain)",
        judged_when="a probe's `dsn` names two servers or more")
def _primaries(f: Figures) -> Measured:
    checked = [d for d in f.dr if d.get("primaries") is not None]
    if not checked:
        return Measured(None, "not checked after the rollback (the drill stopped first, or "
                              "the servers could not be asked)")
    return Measured(float(max(len(d["primaries"]) for d in checked)),
                    "; ".join(f"{d['probe']}: {', '.join(d['primaries']) or 'none'}"
                              for d in checked))


# --- the run -------------------------------------------------------------------------------

@target("steady_state_after", "min", "bool", 1.0, "the target answers SIP everywhere after "
        "the rollback")
def _steady_after(f: Figures) -> Measured:
    s = f.steady_state_after
    if s is None:
        return Measured(None, "not checked (the drill stopped first)")
    return Measured(float(s), "target healthy after rollback")


@target("time_to_detect", "max", "s", None, "fault start to the first on-call acknowledgement")
def _time_to_detect(f: Figures) -> Measured:
    if f.time_to_detect is None:
        return Measured(None, "no acknowledgement after the fault")
    return Measured(f.time_to_detect, f"first acknowledgement by {f.first_ack_by}")


@target("capacity", "min", "calls/s", None, "the knee of a capacity search")
def _capacity(f: Figures) -> Measured:
    if f.capacity is None:
        return Measured(None, "no capacity_search in this scenario")
    return Measured(f.capacity["knee"], f"knee of {len(f.capacity['steps'])} step(s)")


# --- verdicts ------------------------------------------------------------------------------

@dataclass
class Verdict:
    target: str
    measured: float | None
    threshold: float
    direction: str  # "min" (measured >= threshold) or "max" (measured <= threshold)
    unit: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        op = ">=" if self.direction == "min" else "<="
        return f"{self.target}: measured {fmt(self.measured, self.unit)}, target {op} " \
               f"{fmt(self.threshold, self.unit)}" + (f" ({self.detail})" if self.detail else "")


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value:.3f}s"
    if unit == "bool":
        return "yes" if value else "no"
    if unit == "MOS":
        return f"{value:.2f}"
    return f"{value:g}"


def judge(name: str, measured: float | None, threshold: float, detail: str = "",
          none_passes: bool = False) -> Verdict:
    """A verdict; a missing measurement fails unless `none_passes` (nothing to judge)."""
    t = TARGETS[name]
    if measured is None:
        passed = none_passes
    elif t.direction == "min":
        passed = measured >= threshold
    else:
        passed = measured <= threshold
    return Verdict(name, measured, float(threshold), t.direction, t.unit, passed, detail)


# targets whose default holds only where the run's own calls show it applies (README's
# table says where): judged then unless the scenario set them (null switches one off)
JUDGED_WHERE: dict[str, Callable[[list], bool]] = {
    "srtp_failed": lambda records: any(r.srtp for r in records),
    "agent_answer_rate": lambda records: any(r.journey for r in records),
}


def where_judged(sla: dict, given: set[str], records: list) -> dict:
    """`sla` with the defaults of JUDGED_WHERE's targets where the calls show they apply."""
    out = dict(sla)
    for name, applies in JUDGED_WHERE.items():
        if name not in given and out.get(name) is None and applies(records):
            out[name] = TARGETS[name].default
    return out


def verdicts(sla: dict, figures: Figures) -> list[Verdict]:
    """One verdict per enabled target (threshold not None), in the catalogue's order. A key
    the catalogue does not know (an old run's summary) is "not measured" and fails."""
    out = []
    for name in TARGETS:
        if sla.get(name) is not None:
            m = TARGETS[name].measure(figures)
            out.append(judge(name, m.value, float(sla[name]), m.detail, m.nothing_to_judge))
    out += [Verdict(name, None, float(v), "min", "", False, "not measured: no such target "
                    "in this version")
            for name, v in sla.items() if v is not None and name not in TARGETS]
    return out


def markdown_table() -> str:
    """README's table of SLA targets, written from the catalogue."""
    rows = ["| key | judged | default | what |", "|---|---|---|---|"]
    for t in TARGETS.values():
        bound = "at least" if t.direction == "min" else "at most"
        if t.unit == "bool":
            default, bound = ("required" if t.default else "off"), "required"
        elif t.default is None:
            default = "off"
        else:
            default = f"{t.default * 100:g}%" if t.unit == "ratio" else \
                f"{t.default:g} s" if t.unit == "s" else f"{t.default:g}"
        if t.judged_when:
            default += f", where {t.judged_when}"
        rows.append(f"| `{t.name}` | {bound} | {default} | {t.wording} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
