"""Call records and fault windows: the plain data every metric is computed from."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, fields


@dataclass(slots=True)
class CallRecord:
    """One SIP call attempt and its outcome. Times are Unix epoch seconds.

    Slotted: a run keeps one per call, and an hours-long soak keeps millions.

    outcome: "completed" (answered, our BYE got 200), "dropped" (answered,
    ended abnormally), "failed" (never answered).
    """

    call_id: str = ""
    carrier: str = ""
    node: str = ""
    started_at: float = 0.0
    ringing_at: float | None = None
    answered_at: float | None = None
    bye_sent_at: float | None = None
    ended_at: float | None = None
    outcome: str = "failed"
    status: int = 0
    bye_status: int = 0
    reason: str = ""
    hold_planned: float = 0.0
    media: bool = False
    rtp_sent: int = 0
    rtp_expected: int = 0
    rtp_received: int = 0
    rtp_jitter_ms: float = 0.0
    rtp_max_gap: float = 0.0
    rtp_bursts: int = 0           # runs of lost packets in what we received
    rtp_send_late: int = 0        # our packets that left more than 5 ms after their schedule
    # the hotline side's view of our stream, from the far end's receiver reports (0: none)
    rtp_up_expected: int = 0
    rtp_up_received: int = 0
    rtp_up_bursts: int = 0
    rtp_echo: bool = False        # the far end echoed our own packets (round trip only)
    rtp_rtt_ms: float | None = None      # mean round-trip time of the media path
    rtp_rtt_min_ms: float | None = None
    dialog_via: str = ""  # where ACK and BYE went: outbound_proxy, record_route or contact
    entry_address: str = ""  # host:port the call's last INVITE went to (a fallback after failovers)
    failovers: int = 0       # addresses of the entry point given up on before it
    entry_target: str = ""   # the SRV target (a name) of entry_address, for an entry point by DNS
    # an entry point by DNS: "resolved" (asked DNS), "cache" (within the TTL), "failed";
    # "" for an entry point's literal address
    dns: str = ""
    dns_ms: float | None = None  # what resolving its entry point cost the call
    challenged: bool = False  # a request of the call got 401/407 (digest authentication)
    # a failed call's cause when it is known: "auth" (credentials refused), "srtp" (answered
    # without the SRTP its entry point requires), "dns" (its entry point's domain did not
    # resolve)
    cause: str = ""
    tls_handshake_ms: float | None = None  # the handshake of the TLS connection it opened
    tls_reused: bool = False    # it went on a TLS connection another call had opened (a trunk)
    srtp: bool = False          # the call's media was SRTP (keys agreed by SDES)
    srtp_auth_failed: int = 0   # the far end's packets that failed SRTP authentication
    dtmf_heard: str = ""        # RFC 4733 digits the far end sent: "5@1.002 9@1.503" (s after answer)
    dtmf_sent: str = ""         # the keys the caller pressed, the same way
    # the caller's journey past the 200 (metrics/journey.py), wall-clock times
    journey: bool = False
    prompt_at: float | None = None     # the IVR's first prompt heard
    queued_at: float | None = None     # the caller began waiting for an agent
    agent_at: float | None = None      # an agent answered (the inventory's marker)
    abandoned_at: float | None = None  # the caller gave up waiting
    answered_by: str = ""              # the group the key after the agent marker names
    turned_away: str = ""              # "callback" or "announcement": the IVR's marker said so
    callee: str = ""  # the number dialled: the hotline's, or an agent's own (load.dial: agents)

    def fail(self, status: int, reason: str) -> None:
        self.outcome, self.status, self.reason = "failed", status, reason
        self.ended_at = time.time()

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def pdd(self) -> float | None:
        """Post-dial delay: first 180/183 (or the 200 if none) minus INVITE sent."""
        first = self.ringing_at if self.ringing_at is not None else self.answered_at
        return None if first is None else first - self.started_at

    @property
    def planned_end(self) -> float | None:
        return None if self.answered_at is None else self.answered_at + self.hold_planned

    def to_dict(self) -> dict:
        # every field is a plain value: no deep copy (dataclasses.asdict) for a million calls
        return {name: getattr(self, name) for name in _TYPES}

    @classmethod
    def from_dict(cls, d: dict) -> "CallRecord":
        out = {k: _coerce(_TYPES[k], v) for k, v in d.items() if k in _TYPES}
        for k in _SHARED:  # a few distinct values over a whole run: one string object each
            if k in out:
                out[k] = sys.intern(out[k])
        return cls(**out)


_TYPES: dict[str, str] = {f.name: f.type for f in fields(CallRecord)}
_SHARED = ("carrier", "node", "outcome", "reason", "dialog_via", "entry_address", "cause",
           "entry_target", "dns")


def _coerce(typ: str, v):
    if v in ("", None):
        return None if "None" in typ else ({"int": 0, "float": 0.0, "bool": False}.get(typ, ""))
    if typ.startswith("float"):
        return float(v)
    if typ == "int":
        return int(float(v))
    if typ == "bool":
        return v if isinstance(v, bool) else str(v).lower() == "true"
    return v


@dataclass
class FaultWindow:
    """When a fault was in effect, and on what."""

    fault_id: str
    type: str
    target: str
    started_at: float
    ended_at: float | None = None
    nodes: tuple[str, ...] = ()
    undo_started: float | None = None  # a restart's node is coming back from here to ended_at


def iter_events(path):
    """The events of a run folder's events.jsonl one at a time (the file form of the records
    above), never the whole file in memory; a torn last line after a crash is left out."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_events(path) -> list[dict]:
    """Every event of events.jsonl, as a list (small runs and tests; reports stream)."""
    return list(iter_events(path))


def read_run(path) -> tuple[list[CallRecord], list[dict], float | None]:
    """(the call records, every other event, the last event's time) of events.jsonl, in one
    pass: each call's event is turned into its record at once, so a run of a million calls
    holds a million records, not a million event dicts besides."""
    records, events, last = [], [], None
    for ev in iter_events(path):
        last = ev.get("ts", last)
        if ev.get("event") == "call":
            records.append(CallRecord.from_dict(ev["call"]))
        else:
            events.append(ev)
    return records, events, last
