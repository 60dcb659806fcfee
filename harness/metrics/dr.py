"""Disaster-recovery figures from a data probe's records: RPO, RTO of writes, replication lag. Pure.

A heartbeat writer commits one row a tick and keeps every commit the database
acknowledged (Ack). After a failover, the rows still in the surviving database
say which acknowledged writes were lost:
  RPO (count)    acknowledged writes missing afterwards;
  RPO (seconds)  how old the surviving data was when the failure struck: from
                 the last acknowledged write that survived to the last lost
                 one, 0 when nothing was lost (the classic "data loss measured
                 in time", at the writer's tick resolution);
  RTO (writes)   from the fault to the first write acknowledged by a different
                 server than before it (the new primary).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from harness.metrics.calls import percentile


@dataclass(frozen=True)
class Ack:
    seq: int
    sent_at: float    # when the write was sent
    acked_at: float   # when its COMMIT returned: the client was told the row is safe
    server: str       # host:port of the primary that acknowledged it


@dataclass(frozen=True)
class LagSample:
    at: float
    lag: float | None  # seconds the standby is behind; None when unknown
    replayed: int | None = None  # newest heartbeat seq the standby had replayed (None: unknown)


def replication_lag(acked: list[Ack], samples: list[LagSample]) -> list[LagSample]:
    """Replication lag at each sample: the age of the oldest write the primary had
    acknowledged by then that the standby had not replayed (0 when it had them all).

    Read against acknowledged writes rather than the server's "now less the last replayed
    commit": that one grows whenever nothing new is committed (a primary that died has
    nothing more to send, and the standby is not behind), while this one grows only while
    acknowledged data is missing on the standby: a cut link, a slow replay."""
    by_seq = sorted(acked, key=lambda a: a.seq)
    seqs = [a.seq for a in by_seq]
    out = []
    for s in samples:
        if s.replayed is None:
            out.append(LagSample(s.at, None))
            continue
        i = bisect_right(seqs, s.replayed)
        missing = [a.acked_at for a in by_seq[i:] if a.acked_at <= s.at]
        out.append(LagSample(s.at, s.at - min(missing) if missing else 0.0, s.replayed))
    return out


def rpo(acked: list[Ack], surviving: set[int]) -> dict:
    """What the failover lost of the acknowledged writes."""
    acked = sorted(acked, key=lambda a: a.acked_at)
    lost = [a for a in acked if a.seq not in surviving]
    if not lost:
        return {"acked": len(acked), "lost": 0, "seconds": 0.0, "lost_seqs": [],
                "first_lost_at": None, "last_lost_at": None}
    before = [a for a in acked if a.acked_at < lost[0].acked_at and a.seq in surviving]
    since = before[-1].acked_at if before else lost[0].sent_at
    return {"acked": len(acked), "lost": len(lost), "seconds": lost[-1].acked_at - since,
            "lost_seqs": [a.seq for a in lost],
            "first_lost_at": lost[0].acked_at, "last_lost_at": lost[-1].acked_at}


def rto_writes(acked: list[Ack], fault_at: float) -> dict:
    """Fault to the first write acknowledged by another server than the one before it."""
    acked = sorted(acked, key=lambda a: a.acked_at)
    before = [a for a in acked if a.acked_at <= fault_at]
    old = before[-1].server if before else None
    first = next((a for a in acked if a.acked_at > fault_at and a.server != old), None)
    return {"seconds": None if first is None else first.acked_at - fault_at,
            "old_primary": old, "new_primary": first.server if first else None,
            "first_write_at": first.acked_at if first else None}


def lag_summary(samples: list[LagSample]) -> dict:
    values = [s.lag for s in samples if s.lag is not None]
    return {"samples": len(values), "p99": percentile(values, 99),
            "max": max(values) if values else None}


def probe_figures(records: dict, fault_at: float | None) -> dict:
    """The DR figures of one probe's `probe_records` event (the form events.jsonl keeps)."""
    acks = [Ack(int(s), float(sent), float(acked), str(server))
            for s, sent, acked, server in records.get("acks") or []]
    if records.get("replayed") is not None:  # heartbeats the standby had: lag against acks
        samples = replication_lag(acks, [LagSample(float(t), None, None if s is None else int(s))
                                         for t, s in records["replayed"]])
    else:  # an older run: the server's own replay age
        samples = [LagSample(float(t), None if v is None else float(v))
                   for t, v in records.get("lag") or []]
    kept = records.get("surviving")
    return {"probe": records.get("probe"), "kind": records.get("kind"), "acked": len(acks),
            "rpo": None if kept is None else rpo(acks, set(kept)),
            "rto_writes": None if fault_at is None else rto_writes(acks, fault_at),
            "lag": lag_summary(samples),
            "lag_series": [[s.at, s.lag] for s in samples],
            "cdr": cdr_figures(records.get("cdr")),
            "primaries": records.get("primaries"),
            "errors": records.get("errors") or []}


def cdr_figures(cdr: dict | None) -> dict | None:
    """Answered calls looked up in the surviving CDR table: how many, which are missing."""
    if not cdr:
        return None
    missing = list(cdr.get("missing") or [])
    return {"checked": int(cdr.get("checked") or 0), "lost": len(missing), "missing": missing}
