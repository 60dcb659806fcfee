"""The scenario: one drill file, as validated data (pydantic v2).

Every field is documented in README.md ("Scenario format"); keep both in step.
"""
from __future__ import annotations

import bisect
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, create_model, field_validator,
                      model_validator)

from harness.metrics.sla import TARGETS, Target

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def parse_duration(value: Any) -> float:
    """'500ms', '15s', '2m', '1h' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration, like 15s, 500ms or 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration; write it like 15s, 500ms or 2m")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration; write it like 15s, 500ms or 2m")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_ratio(value: Any) -> float:
    """0.9, '90%' -> 0.9; must lie in [0, 1]."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str) and value.strip().endswith("%"):
            value = float(value.strip()[:-1]) / 100
        ratio = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a share; write it like 0.9 or 90%") from None
    if not 0 <= ratio <= 1:
        raise ValueError(f"{value!r} is not a share between 0 and 1 (or 0% and 100%)")
    return ratio


Duration = Annotated[float, BeforeValidator(parse_duration)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


class Strict(BaseModel):
    # NaN and infinity are refused everywhere: a NaN `at:` would jam the timeline silently
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RateChange(Strict):
    """From `at` on, place `calls_per_second`, reached within `ramp` (0: at once)."""

    at: Duration
    calls_per_second: float = Field(gt=0, le=20000)
    ramp: Duration = 0.0


MAX_CAPACITY_STEPS = 200  # at a step a minute, over three hours of drill


class CapacitySearch(Strict):
    """Raise the rate by `step` every `step_duration`, from `start` up to `max`, until a
    step misses a per-call SLA target; the knee is the highest rate that met them all."""

    start: float = Field(gt=0, le=20000)
    step: float = Field(gt=0, le=20000)
    max: float = Field(gt=0, le=20000)
    step_duration: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _upwards(self):
        if self.max < self.start:
            raise ValueError("capacity_search: max must not be below start")
        steps = (self.max - self.start) / self.step + 1
        if steps > MAX_CAPACITY_STEPS:
            raise ValueError(f"capacity_search: {steps:,.0f} steps from start to max; at most "
                             f"{MAX_CAPACITY_STEPS} (hint: a larger step)")
        return self

    def rates(self) -> list[float]:
        n = int((self.max - self.start) / self.step + 1e-9)
        return [round(self.start + i * self.step, 6) for i in range(n + 1)]


class Distribution(Strict):
    """A random time: exactly one of `fixed`, `exponential` (its mean), `lognormal` (median and
    sigma of the log), or `table` (an empirical one: [seconds, share of callers by then]
    rows, shares rising to 1; a time is drawn between the rows, linearly)."""

    fixed: Duration | None = None
    exponential: Duration | None = Field(None, gt=0)
    lognormal: dict[str, float] | None = None
    table: list[tuple[Duration, Ratio]] | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("fixed", "exponential", "lognormal", "table")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fixed, exponential, lognormal, table")
        if self.lognormal is not None and set(self.lognormal) != {"median", "sigma"}:
            raise ValueError("lognormal: give median (seconds) and sigma")
        if self.table is not None:
            shares = [p for _, p in self.table]
            if not self.table or shares != sorted(shares) or shares[-1] != 1.0:
                raise ValueError("table: rows of [seconds, share] with shares rising to 100%")
        return self

    def sampler(self):
        """A function of a random.Random giving one draw, in seconds."""
        if self.fixed is not None:
            return lambda rng, v=self.fixed: v
        if self.exponential is not None:
            return lambda rng, m=self.exponential: rng.expovariate(1 / m)
        if self.lognormal is not None:
            mu, sigma = math.log(self.lognormal["median"]), self.lognormal["sigma"]
            return lambda rng: rng.lognormvariate(mu, sigma)
        times, shares = [0.0] + [t for t, _ in self.table], [0.0] + [p for _, p in self.table]

        def draw(rng):
            u = rng.random()
            i = max(1, bisect.bisect_left(shares, u))
            lo, hi = shares[i - 1], shares[i]
            return times[i - 1] + (times[i] - times[i - 1]) * ((u - lo) / (hi - lo) if hi > lo else 1)
        return draw


def loose_distribution(v: Any) -> Any:
    """A bare duration is a fixed time; `inf`, `never` or null for patience: endless."""
    if isinstance(v, (int, float, str)) and not isinstance(v, bool):
        return {"fixed": v}
    return v


class JourneySpec(Strict):
    """The caller's journey past the 200 (README "The caller's journey"): for `share` of the
    calls, wait for the IVR's prompt, press `keys`, wait for an agent as long as the caller's
    patience lasts, talk. The markers come from the inventory's entry points."""

    share: Ratio = 1.0
    prompt_within: Duration = Field(5.0, gt=0)
    keys: str = Field("", pattern=r"^[0-9*#A-D]*$", max_length=32)
    patience: Annotated[Distribution, BeforeValidator(loose_distribution)] | None = None
    talk: Annotated[Distribution, BeforeValidator(loose_distribution)] = Distribution(fixed=30.0)
    longest: Duration = Field(3600.0, gt=0, le=24 * 3600)


# RFC 4594's names of the code points voice uses, and the class selectors
DSCP_NAMES = {"ef": 46, "va": 44, "af41": 34, "af42": 36, "af43": 38, "af31": 26,
              **{f"cs{i}": 8 * i for i in range(8)}, "be": 0}


def dscp_value(v):
    """`EF`, `af41`, `cs5` or a number 0-63 -> the code point."""
    if isinstance(v, str) and not v.strip().isdigit():
        if v.strip().lower() not in DSCP_NAMES:
            raise ValueError(f"DSCP {v!r}: use a number 0-63 or one of "
                             f"{', '.join(n.upper() for n in DSCP_NAMES)}")
        return DSCP_NAMES[v.strip().lower()]
    return v


class LoadSpec(Strict):
    """SIP call load through the target's entry points: a base rate and optional changes.

    `shape` lists rate changes in time: one change is a step or a surge, a
    change and its return a spike; stairs are several steps.
    """

    calls_per_second: float = Field(2.0, gt=0, le=20000)
    hold: Duration = 8.0
    rtp_share: Ratio = 1.0
    carriers: list[str] | None = None
    invite_timeout: Duration = 8.0
    bye_timeout: Duration = 3.0
    start: Duration = 0.0
    duration: Duration | None = None
    shape: list[RateChange] = []
    capacity_search: CapacitySearch | None = None
    # a registered load engine (load/engines.py); the plan checks the name and what the
    # engine can do (an engine without media places no RTP: rtp_share 0 unless set)
    engine: str = Field("locust", max_length=64)
    # arrivals evenly spaced at the rate, or a Poisson process (exponential gaps, the
    # arrivals queueing theory assumes)
    arrivals: Literal["even", "poisson"] = "even"
    journey: JourneySpec | None = None
    rtp_dscp: Annotated[int, BeforeValidator(dscp_value)] = Field(
        0, ge=0, le=63, description="the DSCP the calls' RTP is marked with (46 or EF: "
        "expedited forwarding, what a priority queue in the path protects; 0: best effort)")
    dial: Literal["hotline", "agents"] = Field("hotline", description="whom each call dials: "
                                               "the hotline's number, or the next of the "
                                               "scenario's agents by its own number (round robin; "
                                               "the registrar's lookup routes it to the phone)")

    @model_validator(mode="after")
    def _search_owns_the_rate(self):
        if self.capacity_search is not None:
            if self.shape:
                raise ValueError("capacity_search sets the rate itself; remove `shape`")
            cs = self.capacity_search
            self.calls_per_second = cs.start
            self.shape = [RateChange(at=self.start + i * cs.step_duration, calls_per_second=r)
                          for i, r in enumerate(cs.rates()) if i > 0]
        return self

    @field_validator("shape")
    @classmethod
    def _in_order(cls, v: list[RateChange]) -> list[RateChange]:
        if [c.at for c in v] != sorted(c.at for c in v):
            raise ValueError("shape: list the rate changes in time order")
        return v


class FaultSpec(BaseModel):
    """One fault: a registered `type`, an inventory `target`, when and for how long.

    Any other keys are the injector's own parameters, checked by its model.
    """

    model_config = ConfigDict(extra="allow")
    type: str
    target: str
    at: Duration
    duration: Duration | None = None
    id: str | None = None

    @property
    def params(self) -> dict:
        return dict(self.model_extra or {})


def _sla_field(t: Target):
    """A target's schema field, from its unit: the catalogue is the one place it is declared."""
    kind = {"ratio": Ratio, "s": Duration, "MOS": Annotated[float, Field(ge=1, le=4.5)],
            "bool": bool, "calls/s": Annotated[float, Field(gt=0)],
            "databases": Annotated[int, Field(ge=1)]}.get(t.unit, Annotated[int, Field(ge=0)])
    default = None if t.default is None or t.judged_when else \
        bool(t.default) if t.unit == "bool" else t.default
    bound = "at least" if t.direction == "min" else "at most"
    return kind | None, Field(default, description=f"{bound}: {t.wording}")


# SLA targets; `null` switches one off. Direction, unit and default are the catalogue's
# (metrics/sla.py TARGETS); `primaries` gets its default where a probe can judge it (below).
SlaSpec = create_model("SlaSpec", __base__=Strict,
                       **{name: _sla_field(t) for name, t in TARGETS.items()})


class MetricOptions(Strict):
    """How the metrics are computed (README "What the numbers mean")."""

    model_config = ConfigDict(extra="forbid")
    pdd_good: Duration | None = Field(None, description="a good call is answered within this; "
                                      "default max(1 s, 3 x the pre-fault PDD p95)")
    recovery_window: Duration = Field(2.0, gt=0)
    recovery_min_attempts: int = Field(10, ge=1)
    recovery_tolerance: Ratio = 0.10
    media_gap: Duration = 1.0
    alarm_window: Duration = 10.0
    # the caller's journey (metrics/journey.py): "X within T" and the shortest abandon counted
    service_time: Duration = Field(20.0, gt=0)
    short_abandon: Duration = Field(5.0, ge=0)
    interval: Duration = Field(900.0, gt=0, description="the journey figures' reporting "
                               "interval (contact centres report per 15 minutes)")

    @model_validator(mode="before")
    @classmethod
    def _old_recovery_run(cls, data):
        if isinstance(data, dict) and "recovery_run" in data:
            raise ValueError("recovery_run (K answered calls in a row) is gone: a lucky run ended "
                             "half outages early; recovery is now judged over a sliding window: "
                             "use recovery_window (default 2s), recovery_min_attempts (10) and "
                             "recovery_tolerance (10%), or delete the key")
        return data


class HttpProbe(Strict):
    url: str = Field(pattern=r"^https?://")
    expect_status: int = 200
    timeout: Duration = 2.0


class PrometheusQuery(Strict):
    url: str = Field(pattern=r"^https?://")
    query: str
    timeout: Duration = 2.0


class AbortRule(Strict):
    """One stop condition: exactly one of the conditions, held for `for` seconds."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    answer_rate_below: Ratio | None = None
    node_down: bool | None = None
    http: HttpProbe | None = None
    prometheus: PrometheusQuery | None = None
    for_: Duration = Field(0.0, alias="for")
    window: Duration = 10.0
    every: Duration = 1.0

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("answer_rate_below", "node_down", "http", "prometheus")
                 if getattr(self, k) not in (None, False)]
        if len(given) != 1:
            raise ValueError("each abort_when rule needs exactly one of answer_rate_below, "
                             "node_down, http, prometheus")
        return self


SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"  # plain SQL identifiers only: no quoting games
SQL_TABLE = r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$"


class CdrCheck(Strict):
    """Where the hotline writes one row per answered call (Kamailio's acc module: table `acc`,
    Call-ID in `callid`). After the drill every call the harness saw answered is looked up
    there by Call-ID; the probe only reads this table."""

    table: str = Field("acc", pattern=SQL_TABLE, description="table (or schema.table) of CDRs")
    call_id_column: str = Field("callid", pattern=SQL_NAME,
                                description="column holding the SIP Call-ID")
    grace: Duration = Field(5.0, ge=0, le=120, description="how long after the load stops a "
                            "CDR may still be on its way before it counts as lost")


def dsn_servers(dsn: str) -> int:
    """How many servers a libpq connection string names (`host=a,b` or a URI's `//a,b/`);
    read here without the driver, which must not be imported before gevent patches."""
    if "://" in dsn:
        hosts = dsn.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
        return len(hosts.split(","))
    m = re.search(r"(?:^|\s)(?:host|hostaddr)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    return len(m.group(1).strip("'").split(",")) if m else 1


class PostgresProbe(Strict):
    """A data probe on a PostgreSQL service (probes/postgres.py): a heartbeat writer through
    `dsn` and, with `standby`, a replication-lag reader. Only its own scratch table is touched."""

    type: Literal["postgres"]
    id: str = Field("postgres", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    dsn: str = Field(min_length=1, description="libpq connection string the writer uses; list "
                     "every server (host=a,b port=x,y) with target_session_attrs=read-write, as "
                     "clients that fail over do")
    standby: str | None = Field(None, description="connection string of a standby to sample "
                                "replication lag from")
    rate: float = Field(10.0, gt=0, le=100, description="heartbeat writes a second")
    write_timeout: Duration = Field(2.0, gt=0, le=30, description="seconds a heartbeat write may "
                                    "wait for its answer before it is given up (a frozen server "
                                    "never answers) and the writer looks for the primary again")
    cdr: CdrCheck | None = Field(None, description="look every answered call's CDR up after the drill")


class PrometheusProbe(Strict):
    """A PromQL probe (probes/prometheus.py): the query's value (the sum of its instant
    vector) sampled every `every` seconds through the drill, on the hotline's own monitoring:
    the report shows it before, during and after each fault."""

    type: Literal["prometheus"]
    id: str = Field("prometheus", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    url: str = Field(pattern=r"^https?://", description="the Prometheus server")
    query: str = Field(min_length=1, description="PromQL, e.g. sum(rate(sbc_5xx_total[30s]))")
    every: Duration = Field(1.0, ge=0.2, le=60)
    timeout: Duration = Field(2.0, gt=0, le=30)


AnyProbe = Annotated[PostgresProbe | PrometheusProbe, Field(discriminator="type")]


class AgentsSpec(Strict):
    """Agents' phones kept registered for the drill (README "Agents' phones registering"):
    `count` phones on flows of their own, REGISTERing to the inventory's registrar."""

    count: int = Field(ge=1, le=2000)
    user_prefix: str = Field("agent", pattern=r"^[A-Za-z0-9._-]+$", max_length=32)
    expires: Duration = Field(60.0, ge=10, le=3600, description="the expiry each phone asks for")
    refresh: Ratio = Field(0.8, gt=0, le=1, description="share of the granted expiry after "
                           "which a phone refreshes")
    retry: Duration = Field(5.0, gt=0, le=600, description="seconds after a failure before "
                            "trying again, where no Retry-After says otherwise (or it is ignored)")
    honour_retry_after: bool = Field(True, description="false: phones that ignore Retry-After "
                                     "(the bad case of a registration storm)")
    timeout: Duration = Field(4.0, gt=0, le=32, description="one REGISTER's wait for its answer")
    spread: Duration = Field(0.0, ge=0, le=3600, description="first REGISTERs spread over this "
                             "long (phones boot at different moments)")
    storm_at: list[Duration] = Field(default_factory=list, max_length=20, description="moments "
                                     "at which every phone loses its flow and registers again "
                                     "at once (a network flap at the contact centre): the "
                                     "registration storm")
    ring: Duration = Field(1.0, ge=0, le=60, description="seconds an agent's phone rings "
                           "before the agent answers (the agent then talks until the caller "
                           "hangs up: load.hold)")


class CaptureSpec(Strict):
    """The drill's packets kept in its run folder (`capture/`, owner-only): the SIP of its
    entry points and nodes, whole; the RTP beside them, headers only, when `rtp` is set."""
    rtp: bool = False
    max_mb: int = Field(200, ge=5, le=100_000, description="the ring's bound on disk, per kind")


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    target: str = "sandbox"
    tags: list[str] = []
    duration: Duration = Field(gt=0)
    seed: int | None = None
    load: LoadSpec = LoadSpec()
    faults: list[FaultSpec] = []
    sla: SlaSpec = SlaSpec()
    metrics: MetricOptions = MetricOptions()
    abort_when: list[AbortRule] = []
    probes: list[AnyProbe] = Field(default_factory=list, max_length=8)
    agents: AgentsSpec | None = None
    capture: CaptureSpec | None = None
    # options of a target that takes them (the practice sandbox: lab/sandbox.py SandboxOptions),
    # validated by that target when the plan is built (runner/plan.py)
    sandbox: dict[str, Any] | None = None

    @field_validator("duration")
    @classmethod
    def _bounded(cls, v: float) -> float:
        if v > 24 * 3600:
            raise ValueError("a drill longer than 24h is refused; split it")
        return v

    @model_validator(mode="after")
    def _agents_to_dial(self) -> "Scenario":
        late = [at for at in (self.agents.storm_at if self.agents else []) if at >= self.duration]
        if late:
            raise ValueError(f"agents.storm_at: {late[0]:g}s is not before the end of the drill "
                             f"({self.duration:g}s)")
        if self.load.dial == "agents" and self.agents is None:
            raise ValueError("load.dial: agents needs the scenario's `agents:` (the phones the "
                             "calls are for); add it, or dial the hotline")
        if self.load.dial == "agents" and self.load.journey is not None:
            raise ValueError("load.dial: agents calls each agent's own number, with no IVR or "
                             "queue on the way: remove load.journey, or dial the hotline")
        return self

    @model_validator(mode="after")
    def _split_brain_judged(self) -> "Scenario":
        """`primaries` is judged where a probe names several servers: 1 unless the scenario
        says otherwise (null switches it off); asked for with none, it could never be judged."""
        several = any(dsn_servers(p.dsn) > 1 for p in self.probes if p.type == "postgres")
        if "primaries" not in self.sla.model_fields_set:
            self.sla.primaries = int(TARGETS["primaries"].default) if several else None
        elif self.sla.primaries is not None and not several:
            raise ValueError("sla.primaries needs a probe whose dsn names two servers or more "
                             "(host=a,b): with one there is nothing to compare; remove the key")
        return self
