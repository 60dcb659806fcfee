"""SLA verdicts: each target's measured value against its threshold. Pure."""
from __future__ import annotations

from dataclasses import asdict, dataclass

SLA_TARGETS: dict[str, tuple[str, str, float | None]] = {
    # name: (direction, unit, default) — defaults from MISSION.md where it has one
    "answer_rate": ("min", "ratio", 0.90),
    "failover_time": ("max", "s", 30.0),
    "traffic_shift": ("max", "s", 30.0),  # the hotline playbook's "switch within 30 s"
    "outage": ("max", "s", None),
    "dropped_call_rate": ("max", "ratio", 0.01),
    "call_continuity": ("min", "ratio", None),
    "bystander_continuity": ("min", "ratio", None),
    "pdd_p95": ("max", "s", None),
    "media_loss": ("max", "ratio", None),
    # voice quality (metrics/voice.py): the E-model MOS of the calls, worst 5 % and median
    # 3.1: the E-model's edge of "many users dissatisfied" (G.107 Annex B, R 60)
    "mos_p5": ("min", "MOS", 3.1),
    "mos_p50": ("min", "MOS", None),
    # silence: a caller who hears nothing is not a poor call but a broken one (metrics/voice.py)
    "dead_air": ("max", "ratio", 0.01),
    "one_way_audio": ("max", "ratio", 0.01),
    # RFC 6076 and E.411 (metrics/sessions.py)
    "ser": ("min", "ratio", None),
    "seer": ("min", "ratio", None),
    "isa": ("max", "ratio", None),
    "scr": ("min", "ratio", None),
    "asr": ("min", "ratio", None),
    "ner": ("min", "ratio", None),
    "srd_p95": ("max", "s", None),
    "sdd_p95": ("max", "s", None),
    # disaster recovery (metrics/dr.py), from data probes
    "rpo": ("max", "s", None),
    "rpo_writes": ("max", "writes", None),
    "rto": ("max", "s", None),
    "replication_lag_p99": ("max", "s", None),
    "cdrs_lost": ("max", "CDRs", None),
    # a split brain is never acceptable: judged wherever a probe names several servers
    "primaries": ("max", "databases", 1.0),
    "steady_state_after": ("min", "bool", 1.0),
    "time_to_detect": ("max", "s", None),
    "capacity": ("min", "calls/s", None),
}


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


def judge(target: str, measured: float | None, threshold: float, detail: str = "",
          none_passes: bool = False) -> Verdict:
    """A verdict; a missing measurement fails unless `none_passes` (nothing to measure)."""
    direction, unit, _ = SLA_TARGETS[target]
    if measured is None:
        passed = none_passes
    elif direction == "min":
        passed = measured >= threshold
    else:
        passed = measured <= threshold
    return Verdict(target, measured, float(threshold), direction, unit, passed, detail)


def verdicts(sla: dict, measured: dict[str, tuple[float | None, str, bool]]) -> list[Verdict]:
    """One verdict per enabled target. `measured[name]` = (value, detail, none_passes)."""
    out = []
    for name, threshold in sla.items():
        if threshold is None or name not in measured:
            continue
        value, detail, none_passes = measured[name]
        out.append(judge(name, value, float(threshold), detail, none_passes))
    return out
