"""The PostgreSQL data probe: a heartbeat writer and a replication-lag reader.

The writer commits one row a tick (10 a second by default) into a scratch table
of its own (`hotline_drill_heartbeat`, created if missing; `cleanup` drops it;
nothing else is touched) and keeps every commit the server acknowledged. It
connects as real clients fail over: a libpq connection string with several
hosts and `target_session_attrs=read-write`, so after a failover it finds
whichever server is primary now. A write whose COMMIT did not return is not
acknowledged and never counted as lost. After the drill, `surviving` reads
which rows the surviving database still has; metrics/dr.py turns both into
RPO and RTO. The reader samples how far a standby's replay is behind.

psycopg 3 (the maintained PostgreSQL driver) does the talking.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager

import psycopg
from psycopg import sql

from harness.metrics.dr import Ack, LagSample

TABLE = "hotline_drill_heartbeat"


class Stopped(psycopg.OperationalError):
    """A probe session not begun, or cut short, because the drill was told to stop."""


SESSION_BOUND = 5.0     # s: a probe's own session (read, drop, look-up) lasts no longer
LOCK_TIMEOUT_MS = 3000  # nor waits longer for a lock (a DROP behind commits that hang)


def _connect(conninfo: str, timeout: float = 1.0) -> psycopg.Connection:
    return psycopg.connect(conninfo, connect_timeout=max(1, round(timeout)))


class _Bound:
    """At `bound` s, or at once when `interrupt` is set (the drill was told to stop), cancel
    what the session waits for; if it still waits one second later (a server too frozen to
    take a cancel; at once when interrupted), shut its socket. The cancel is psycopg's own
    bounded one, which waits cooperatively under gevent: libpq's blocking cancel would hold
    the whole process. Stopped before the socket closes, so it never touches a descriptor
    reused by another connection."""

    def __init__(self, conn: psycopg.Connection, bound: float,
                 interrupt: threading.Event | None = None):
        self.conn, self.lock = conn, threading.Lock()
        self.interrupt, self.done = interrupt or threading.Event(), threading.Event()
        self.bound = bound
        self.thread = threading.Thread(target=self._watch, name="probe-session-bound", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.bound
        while not self.done.is_set():  # ends at the bound, at an interrupt, or when stopped
            left = deadline - time.monotonic()
            if left <= 0 or self.interrupt.is_set():
                break
            self.done.wait(min(left, 0.1))
        if self.done.is_set():
            return
        hurried = self.interrupt.is_set()
        with self.lock:
            if not self.conn.closed:
                try:
                    self.conn.cancel_safe(timeout=0.3 if hurried else 1.0)
                except (psycopg.Error, OSError):
                    pass
        if not hurried:
            self.done.wait(1.0)
        with self.lock:
            if not self.done.is_set() and not self.conn.closed:
                _cut_off(self.conn.fileno())

    def stop(self) -> None:
        self.done.set()
        with self.lock:  # a cancel or cut already running finishes before the socket is closed
            pass


@contextmanager
def _session(conninfo: str, bound: float = SESSION_BOUND,
             interrupt: threading.Event | None = None):
    """A connection whose whole use, COMMIT included, has a bound. A server whose commits hang
    for ever (a promoted primary still waiting for a synchronous standby that is gone) must
    not hold the drill, and PostgreSQL's statement_timeout stops short of the wait for a
    synchronous standby, so the bound is the client's: a cancel request when it passes (the
    server then ends the wait, the commit already made locally, with a warning). `interrupt`:
    set when the drill is told to stop; the session is cancelled then, whatever it waits for."""
    if interrupt is not None and interrupt.is_set():
        raise Stopped("not started: the drill was stopped")
    conn = _connect(conninfo)
    watch = _Bound(conn, bound, interrupt)
    try:
        with conn:
            conn.autocommit = True  # set outside a transaction, so the caller may choose
            conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            conn.autocommit = False
            yield conn
    finally:
        watch.stop()
        conn.close()


def setup(conninfo: str, interrupt: threading.Event | None = None) -> None:
    with _session(conninfo, interrupt=interrupt) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (run text NOT NULL, seq bigint NOT NULL, "
                     "written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, seq))")


def cleanup(conninfo: str, interrupt: threading.Event | None = None) -> None:
    with _session(conninfo, interrupt=interrupt) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


CLEANUP_BY_HAND = f"DROP TABLE IF EXISTS {TABLE};"  # what a cleanup that could not finish leaves


def surviving(conninfo: str, run: str, interrupt: threading.Event | None = None) -> set[int]:
    """The sequence numbers of `run` the database at `conninfo` still holds."""
    with _session(conninfo, interrupt=interrupt) as conn:
        return {row[0] for row in conn.execute(f"SELECT seq FROM {TABLE} WHERE run = %s", (run,))}


def primaries(conninfo: str, interrupt: threading.Event | None = None) -> list[str] | None:
    """Every server the multi-host `conninfo` names that takes writes now ("host:port"), each
    asked on its own. More than one after a drill is a split brain: clients that reach
    different servers write histories that will not merge. None when `conninfo` names one
    server only (nothing to compare)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    params = conninfo_to_dict(conninfo)
    hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
    if len(hosts) < 2:
        return None
    ports = str(params.get("port") or "5432").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    params.pop("hostaddr", None)
    out = []
    for host, port in zip(hosts, ports):
        one = make_conninfo(**{**params, "host": host, "port": port,
                               "target_session_attrs": "any"})
        try:
            with _session(one, interrupt=interrupt) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    out.append(f"{host}:{port}")
        except psycopg.Error:
            pass  # down or unreachable: takes no writes from anyone who cannot reach it
    if interrupt is not None and interrupt.is_set():  # cut short: the list is not the answer
        raise Stopped("cut short: the drill was stopped")
    return out


def cdrs_found(conninfo: str, table: str, column: str, call_ids: list[str],
               grace: float = 0.0, interrupt: threading.Event | None = None) -> set[str]:
    """Which of `call_ids` have a CDR row in `table` (looked up by `column`), asking again
    until all are there or `grace` seconds pass (a CDR is written when its BYE completes, and
    a hotline may write it a moment later). Names are quoted as identifiers, never pasted."""
    query = sql.SQL("SELECT DISTINCT {col} FROM {tab} WHERE {col} = ANY(%s)").format(
        col=sql.Identifier(column), tab=sql.Identifier(*table.split(".")))
    deadline = time.time() + grace
    stop = interrupt or threading.Event()
    with _session(conninfo, SESSION_BOUND + grace, stop) as conn:
        conn.autocommit = True
        while True:
            # a SQL_ASCII database hands text back as bytes
            found = {row[0].decode() if isinstance(row[0], bytes) else row[0]
                     for row in conn.execute(query, (call_ids,))}
            if len(found) >= len(set(call_ids)) or time.time() >= deadline:
                return found
            if stop.is_set():  # what is not found yet is not known to be missing
                raise Stopped("cut short: the drill was stopped")
            stop.wait(min(0.5, max(0.0, deadline - time.time())))


class _Background:
    """A probe loop in a thread of its own, until stopped; `stop` returns what it recorded."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self, hurry: bool = False) -> list:
        """Stop the loop and return its records; `hurry` (the drill was told to stop): what
        it waits for is cut at once and it is not waited for (a daemon, gone at exit)."""
        self._stop.set()
        if hurry:
            self._hurry()
        if self._thread:
            self._thread.join(0.3 if hurry else 10)
        return list(self.records())

    def _hurry(self) -> None:
        """Cut what the loop waits for (nothing by default)."""

    def _loop(self) -> None:
        raise NotImplementedError

    def records(self) -> list:
        raise NotImplementedError


def _cut_off(fd: int) -> None:
    """Shut a connection's socket down from outside: the write waiting on it fails at once."""
    try:
        with socket.socket(fileno=os.dup(fd)) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the write ended by itself


class HeartbeatWriter(_Background):
    """Commits (run, seq) at `rate` a second until stopped; `acked` holds what was acknowledged.

    A write that gets no answer within `write_timeout` seconds is given up (its socket shut
    down) as a client with a timeout would: a frozen server (a paused site) still has its
    kernel acknowledge the bytes, so nothing below the application would ever end the wait,
    and the writer could not look for the new primary."""

    def __init__(self, conninfo: str, run: str, rate: float = 10.0, write_timeout: float = 2.0):
        super().__init__()
        self.conninfo, self.run, self.interval = conninfo, run, 1.0 / rate
        self.write_timeout = write_timeout
        self.acked: list[Ack] = []
        self.errors: list[tuple[float, str]] = []
        self._conn: psycopg.Connection | None = None  # the one in use, for `_hurry`
        self._conn_lock = threading.Lock()

    def records(self) -> list[Ack]:
        return self.acked

    def _loop(self) -> None:
        conn, seq, nxt = None, 0, time.time()
        while not self._stop.is_set():
            nxt += self.interval
            watchdog = None
            try:
                if conn is None or conn.closed:
                    conn = _connect(self.conninfo)
                    with self._conn_lock:
                        self._conn = conn
                seq += 1
                watchdog = threading.Timer(self.write_timeout, _cut_off, (conn.fileno(),))
                watchdog.start()
                sent = time.time()
                conn.execute(f"INSERT INTO {TABLE} (run, seq) VALUES (%s, %s)", (self.run, seq))
                conn.commit()
                self.acked.append(Ack(seq, sent, time.time(), f"{conn.info.host}:{conn.info.port}"))
            except psycopg.Error as exc:  # fate of this write unknown: not acknowledged
                self.errors.append((time.time(), str(exc).strip().splitlines()[0][:200]))
                self._close(conn)
                conn = None
            finally:
                if watchdog is not None:
                    watchdog.cancel()
            self._stop.wait(max(0.0, nxt - time.time()))
            if nxt < time.time() - 1.0:
                nxt = time.time()  # a long outage: tick on from now, no burst of catch-up writes
        self._close(conn)

    def _close(self, conn: psycopg.Connection | None) -> None:
        with self._conn_lock:  # never while `_hurry` shuts its socket
            if conn is not None:
                conn.close()
            self._conn = None

    def _hurry(self) -> None:
        """A write waiting on a server that hangs its commits ends now, not at its timeout."""
        with self._conn_lock:
            if self._conn is not None and not self._conn.closed:
                _cut_off(self._conn.fileno())


class LagReader(_Background):
    """Samples, twice a second, how far the standby at `conninfo` is behind: the newest
    heartbeat of `run` it has replayed (metrics/dr.py turns that into the age of the oldest
    acknowledged write it lacks), and the server's own replay age (now() less the commit time
    of the last transaction it replayed). A server that is no longer in recovery (promoted)
    is no standby: its samples are unknown."""

    def __init__(self, conninfo: str, run: str = "", every: float = 0.5):
        super().__init__()
        self.conninfo, self.run, self.every = conninfo, run, every
        self.samples: list[LagSample] = []

    def records(self) -> list[LagSample]:
        return self.samples

    def _loop(self) -> None:
        conn = None
        while not self._stop.is_set():
            lag = replayed = None
            try:
                if conn is None or conn.closed:
                    conn = _connect(self.conninfo)
                    conn.autocommit = True
                standby, age = conn.execute(
                    "SELECT pg_is_in_recovery(), extract(epoch FROM "
                    "now() - pg_last_xact_replay_timestamp())").fetchone()
                if standby:
                    lag = None if age is None else float(age)
                    row = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {TABLE} WHERE run = %s",
                                       (self.run,)).fetchone()
                    replayed = int(row[0])
            except psycopg.Error:  # down, or the scratch table not replayed yet: unknown
                if conn is not None:
                    conn.close()
                conn = None
            self.samples.append(LagSample(time.time(), lag, replayed))
            self._stop.wait(self.every)
        if conn is not None:
            conn.close()
