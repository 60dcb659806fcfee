"""The drill's data probes: checked before anything is injected, started with the load,
stopped when the load stops (before the final rollback, so a restored old primary never
enters the figures), each one's records published as one `probe_records` event; after the
rollback, which servers take writes (`primaries_after`: a split brain shows there)."""
from __future__ import annotations

import threading

from harness.probes import postgres, prometheus
from harness.scenario.model import AnyProbe, PostgresProbe


class ProbeSet:
    """`interrupt`: set when the drill is told to stop by a signal; every
    probe session then ends at once, whatever it waits for, and the CDR look-up waits no
    grace: a server that hangs its commits must not hold a drill that was asked to end."""

    def __init__(self, specs: list[AnyProbe], run_id: str,
                 interrupt: threading.Event | None = None):
        self.promql = [x for x in specs if x.type == "prometheus"]
        self.samplers: list[tuple] = []
        specs = [x for x in specs if x.type == "postgres"]
        self.specs, self.run_id = specs, run_id
        self.interrupt = interrupt or threading.Event()
        self.running: list[tuple[PostgresProbe, postgres.HeartbeatWriter,
                                 postgres.LagReader | None]] = []

    def check(self) -> list[str]:
        """What keeps a probe from working (the scratch table is created here)."""
        problems = []
        for spec in self.specs:
            try:
                postgres.setup(spec.dsn, self.interrupt)
            except postgres.psycopg.Error as exc:
                problems.append(f"probe {spec.id}: cannot write to {spec.dsn!r}: "
                                f"{str(exc).strip().splitlines()[0]}")
        for spec in self.promql:  # a query Prometheus refuses now would give no figure at all
            try:
                prometheus.instant(spec.url, spec.query, spec.timeout)
            except (OSError, ValueError, KeyError) as exc:
                problems.append(f"probe {spec.id}: {spec.url} does not answer {spec.query!r}: "
                                f"{exc}")
        return problems

    def start(self) -> None:
        for spec in self.promql:
            self.samplers.append((spec, prometheus.Sampler(spec.url, spec.query, spec.every,
                                                           spec.timeout, self.interrupt).start()))
        for spec in self.specs:
            writer = postgres.HeartbeatWriter(spec.dsn, self.run_id, spec.rate,
                                              spec.write_timeout).start()
            lag = postgres.LagReader(spec.standby, self.run_id).start() if spec.standby else None
            self.running.append((spec, writer, lag))

    def stop(self, publish, answered: list[str] = (), grace: bool = True) -> None:
        """Stop every probe and publish its records; `answered`: the Call-IDs of the calls
        the harness saw answered, looked up in the CDR table where the probe has one, with
        the probe's grace for late CDRs unless `grace` is false (the drill was aborted)."""
        stop = self.interrupt
        for spec, sampler in self.samplers:
            publish("promql_samples", probe=spec.id, query=spec.query,
                    samples=[list(x) for x in sampler.stop()])
        self.samplers = []
        for spec, writer, lag in self.running:
            acks = writer.stop(hurry=stop.is_set())
            samples = lag.stop(hurry=stop.is_set()) if lag else []
            errors = [f"{t:.3f} {e}" for t, e in writer.errors[-20:]]
            try:
                kept = sorted(postgres.surviving(spec.dsn, self.run_id, stop))
            except postgres.psycopg.Error as exc:  # no primary left to ask: RPO unknown
                kept = None
                errors.append(f"surviving rows unreadable: {str(exc).strip().splitlines()[0]}")
            try:
                postgres.cleanup(spec.dsn, stop)  # the scratch table was the probe's only footprint
            except postgres.psycopg.Error as exc:
                errors.append(f"scratch table not dropped: {str(exc).strip().splitlines()[0]} "
                              f"(left behind: table {postgres.TABLE}; remove it with "
                              f"`{postgres.CLEANUP_BY_HAND}` on the primary)")
            cdr = None
            if spec.cdr is not None:
                try:
                    found = postgres.cdrs_found(spec.dsn, spec.cdr.table, spec.cdr.call_id_column,
                                                list(answered),
                                                spec.cdr.grace if grace and not stop.is_set()
                                                else 0.0, stop)
                    cdr = {"checked": len(answered),
                           "missing": sorted(set(answered) - found)}
                except postgres.psycopg.Error as exc:  # unreadable: CDR loss unknown
                    errors.append(f"CDRs unreadable: {str(exc).strip().splitlines()[0]}")
            publish("probe_records", probe=spec.id, kind=spec.type,
                    acks=[[a.seq, a.sent_at, a.acked_at, a.server] for a in acks],
                    lag=[[s.at, s.lag] for s in samples],
                    replayed=[[s.at, s.replayed] for s in samples],
                    surviving=kept, cdr=cdr, errors=errors)
        self.running = []

    def check_primaries(self, publish) -> None:
        """After the rollback, with the target healthy again: which of each probe's servers
        take writes. A site that comes back from a hang or a partition with its old primary
        still writable beside the promoted one is a split brain, which no figure taken while
        the fault held can show."""
        for spec in self.specs:
            try:
                rw, error = postgres.primaries(spec.dsn, self.interrupt), None
            except postgres.psycopg.Error as exc:  # a DSN libpq parses but cannot split
                rw, error = None, str(exc).strip().splitlines()[0]
            publish("primaries_after", probe=spec.id, primaries=rw, error=error)
