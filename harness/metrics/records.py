"""Call records and fault windows: the plain data every metric is computed from."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class CallRecord:
    """One SIP call attempt and its outcome. Times are Unix epoch seconds.

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
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CallRecord":
        names = {f.name: f.type for f in fields(cls)}
        out = {}
        for k, v in d.items():
            if k not in names:
                continue
            out[k] = _coerce(names[k], v)
        return cls(**out)


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


def read_events(path) -> list[dict]:
    """The events of a run folder's events.jsonl (the file form of the records above); a
    torn last line after a crash is left out."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
