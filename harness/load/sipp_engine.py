"""The SIPp engine (`engine: sipp` in the load section): SIPp places the calls.

For call rates beyond what Python can generate. One SIPp process per entry
point runs a UAC scenario written here; each call logs one line when it
starts and one when it ends (times from SIPp's own gettimeofday, the
answering node's Contact, the failure code), and those lines become the
same call records the Locust engine makes. SIPp's own statistics
(`-trace_stat`) are kept beside them, and its final counts are published as
the `sipp_totals` event so the two can be compared. The rate is changed
through SIPp's control port (`cset rate N`), and `q` on that port makes SIPp
stop placing calls and let the ones in progress finish. SIPp sends no RTP
here: media is not measured with this engine (the scenario model refuses
`rtp_share` above 0 with it). An entry point with digest credentials gets a scenario that
answers one 401/407 per INVITE through SIPp's own `[authentication]` (MD5, qop=auth).

Every SIPp process is bounded: `-m` (calls) and `-timeout` (seconds) make it
stop by itself, and it is stopped by its pid.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jinja2 import Environment, PackageLoader

from harness.metrics.records import CallRecord
from harness.ops.secrets import MASK
from harness.sip.sdp import Audio
from harness.scenario.inventory import EntryPoint
from harness.scenario.model import LoadSpec
from harness.sip.message import listener_port, local_ip_for

# final answers a call may get instead of 200; any other one aborts the call inside SIPp
FAIL_CODES = (400, 401, 403, 404, 407, 408, 480, 481, 483, 486, 487, 488, 500, 501, 502, 503, 504,
              600, 603, 604)


def scenario_xml(spec: LoadSpec, credentials: tuple[str, str] | None = None) -> str:
    """The UAC scenario SIPp runs (templates/sipp-uac.xml.j2), with this load's timers;
    `credentials` (user, password): a 401/407 is answered once with them."""
    env = Environment(loader=PackageLoader("harness.load", "templates"), autoescape=False,
                      keep_trailing_newline=True)
    invite_ms, hold_ms, bye_ms = (int(x * 1000) for x in (spec.invite_timeout, spec.hold,
                                                          spec.bye_timeout))
    # the offer in SIPp's own keywords, written by the one SDP module (sip/sdp.py)
    sdp = Audio("[media_ip]", "[media_port]", 1, origin_ip="[local_ip]", family="[media_ip_type]",
                origin_family="[local_ip_type]", session_name="-", ptime=None, direction=None)
    return env.get_template("sipp-uac.xml.j2").render(
        invite_ms=invite_ms, hold_ms=hold_ms, bye_ms=bye_ms, fail_codes=FAIL_CODES,
        first_codes=[c for c in FAIL_CODES if c not in (401, 407)], auth=credentials is not None,
        credentials="username=%s password=%s" % credentials if credentials else "",
        sdp=sdp.text(eol="\n"))


def _t(s: str, u: str) -> float | None:
    seconds = float(s or 0) + float(u or 0) / 1e6  # a variable never set prints as nothing
    return seconds if seconds > 0 else None


@dataclass
class LogReader:
    """Turns SIPp's log lines into call records, as they are written."""

    carrier: str
    hold: float
    node_of: Callable[[str], str]
    starts: dict[str, float] = field(default_factory=dict)
    ended: int = 0

    def line(self, text: str) -> CallRecord | None:
        parts = [p.strip() for p in text.split("|")]
        if len(parts) == 4 and parts[0] == "start":
            self.starts[parts[1]] = _t(parts[2], parts[3]) or time.time()
            return None
        if len(parts) not in (13, 14) or parts[0] != "end":
            return None
        _, call_id, outcome, code, s1, u1, s2, u2, s3, u3, s4, u4, contact, *chal = parts
        self.ended += 1
        started = self.starts.pop(call_id, None) or _t(s4, u4)
        rec = CallRecord(call_id=call_id, carrier=self.carrier, started_at=started,
                         ringing_at=_t(s1, u1), answered_at=_t(s2, u2), bye_sent_at=_t(s3, u3),
                         ended_at=_t(s4, u4), outcome=outcome, hold_planned=self.hold)
        rec.challenged = bool(chal and float(chal[0] or 0))
        if outcome == "failed":
            rec.status = int(float(code))
            rec.reason = f"{rec.status} (SIPp)" if rec.status != 408 else "no final answer (SIPp timeout)"
            if rec.status in (401, 407):
                rec.challenged, rec.cause = True, "auth"
                rec.reason = f"{rec.status} (SIPp): credentials refused" if chal and \
                    float(chal[0] or 0) else f"{rec.status} (SIPp): challenged, no credentials"
            rec.answered_at = rec.bye_sent_at = None
        else:
            rec.status, rec.node = 200, self.node_of(contact)
            rec.bye_status = int(float(code or 0))
            rec.reason = "" if outcome == "completed" else \
                (f"BYE answered {rec.bye_status}" if rec.bye_status else "BYE not answered")
        return rec

    def leftovers(self) -> list[CallRecord]:
        """Calls SIPp started but never logged an end for: aborted inside SIPp (an unexpected
        message, or the run stopped): failed."""
        out = [CallRecord(call_id=cid, carrier=self.carrier, started_at=t, ended_at=t,
                          outcome="failed", reason="no outcome logged by SIPp (call aborted)",
                          hold_planned=self.hold) for cid, t in self.starts.items()]
        self.starts.clear()
        return out


class SippLoad:
    """The drill's view of SIPp load; the same interface as LoadController."""

    def __init__(self, spec: LoadSpec, entries: list[EntryPoint], on_record: Callable[[CallRecord], None],
                 node_of: Callable[[str], str], work_dir: Path, duration: float,
                 on_event: Callable[..., None] | None = None):
        self.spec, self.entries, self.on_record, self.node_of = spec, entries, on_record, node_of
        self.work_dir, self.duration = Path(work_dir), duration
        self.on_event = on_event or (lambda *a, **k: None)
        peak = max([spec.calls_per_second] + [c.calls_per_second for c in spec.shape])
        self.max_calls = int(peak * duration * 1.2) + 10  # a bound SIPp enforces by itself
        self.procs: list[tuple[EntryPoint, subprocess.Popen, int, Path, LogReader]] = []
        self.users = 0
        self._stop_reading = threading.Event()
        self._reader = None
        (self.work_dir / "sipp").mkdir(parents=True, exist_ok=True)
        self.xml = self.work_dir / "sipp" / "uac.xml"
        self.xml.write_text(scenario_xml(spec))
        # an entry point with digest credentials gets its own scenario, with the password in
        # it (this SIPp expands no keyword inside [authentication]): in a private folder
        # outside the run folder, removed when SIPp is done, never on its command line; the
        # run folder keeps a copy with the password masked
        for e in entries:
            if e.auth and any(c.isspace() or c in "[]" for c in e.auth[0].username + e.auth[0].secret):
                raise ValueError(f"entry point {e.name}: SIPp cannot send a user or password "
                                 "with spaces or brackets (use engine: locust)")
        self._secrets = Path(tempfile.mkdtemp(prefix="hd-sipp-")) if any(e.auth for e in entries) \
            else None
        for e in entries:
            if e.auth:
                (self.work_dir / "sipp" / f"uac-{e.name}.xml").write_text(
                    scenario_xml(spec, (e.auth[0].username, MASK)))
                (self._secrets / f"uac-{e.name}.xml").write_text(
                    scenario_xml(spec, (e.auth[0].username, e.auth[0].secret)))
        self.rates: list[tuple[float, float]] = []  # (since, calls/s): the schedule SIPp was given
        self.stopped_at: float | None = None
        self.totals: dict[str, dict] = {}  # per entry point, SIPp's own final counts

    @property
    def in_flight(self) -> int:
        return sum(len(r.starts) for *_, r in self.procs)

    def _argv(self, entry: EntryPoint, rate: float, control: int, folder: Path) -> list[str]:
        host, port = entry.addr
        local = entry.caller_ip or local_ip_for(host)
        tcp = entry.transport == "tcp"
        xml = self._secrets / f"uac-{entry.name}.xml" if entry.auth else self.xml
        return ["sipp", f"{host}:{port}", "-sf", str(xml), "-i", local,
                "-p", str(listener_port(local, udp=not tcp)),
                "-t", "t1" if tcp else "u1", "-r", f"{rate:.3f}", "-rp", "1000",
                "-m", str(max(1, self.max_calls // len(self.entries))),
                "-timeout", f"{int(self.duration + self.spec.hold + 60)}s",
                "-cp", str(control), "-nostdin",
                # a safety net: every wait in the scenario has its own timeout and label
                "-recv_timeout", str(int((self.spec.invite_timeout + self.spec.bye_timeout) * 2000)),
                "-trace_logs", "-log_file", str(folder / "calls.log"),
                "-trace_stat", "-stf", str(folder / "stats.csv"), "-fd", "1",
                "-trace_err", "-error_file", str(folder / "errors.log"),
                # a message the scenario does not expect is logged and the call goes on, as a
                # phone's does: an SBC may relay a 180 after the 200 it followed (Kamailio
                # sends replies from several workers down one TCP connection), and SIPp would
                # abort that answered call, leaving it with no outcome beside the SBC's count
                "-default_behaviors", "all,-abortunexp"]

    def start(self) -> None:
        self.rates.append((time.time(), self.spec.calls_per_second))
        rate = self.spec.calls_per_second / len(self.entries)
        for entry in self.entries:
            folder = self.work_dir / "sipp" / entry.name
            folder.mkdir(parents=True, exist_ok=True)
            control = listener_port()
            proc = subprocess.Popen(self._argv(entry, rate, control, folder), cwd=folder,
                                    stdout=subprocess.DEVNULL, stderr=open(folder / "stderr.log", "w"),
                                    start_new_session=True)
            self.procs.append((entry, proc, control, folder,
                               LogReader(entry.name, self.spec.hold, self.node_of)))
        deadline = time.time() + 1.0  # a scenario or option SIPp rejects makes it exit at once
        while time.time() < deadline and all(p.poll() is None for _, p, *_ in self.procs):
            time.sleep(0.05)
        dead = [(e, p, f) for e, p, _, f, _ in self.procs if p.poll() is not None]
        if dead:
            self.abort()
            entry, proc, folder = dead[0]
            why = (folder / "stderr.log").read_text().strip().splitlines()[-1:] or ["(no message)"]
            raise RuntimeError(f"SIPp for {entry.name} exited at once (code {proc.returncode}): "
                               f"{why[0]} (see {folder})")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        offsets = {id(p): 0 for _, p, *_ in self.procs}
        while True:
            stopping = self._stop_reading.is_set()
            for _, proc, _, folder, reader in self.procs:
                path = folder / "calls.log"
                if not path.exists():
                    continue
                with open(path) as fh:
                    fh.seek(offsets[id(proc)])
                    chunk = fh.read()
                complete = chunk[:chunk.rfind("\n") + 1]
                offsets[id(proc)] += len(complete.encode())
                for text in complete.splitlines():
                    rec = reader.line(text)
                    if rec:
                        self.on_record(rec)
            if stopping:
                return
            time.sleep(0.1)

    def _control(self, control: int, command: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(command.encode(), ("127.0.0.1", control))

    def set_rate(self, calls_per_second: float, ramp: float = 0.0) -> int:
        """A new rate at once (SIPp has no ramp of its own: a ramp is taken as a step)."""
        self.rates.append((time.time(), calls_per_second))
        for _, proc, control, *_ in self.procs:
            if proc.poll() is None:
                self._control(control, f"cset rate {calls_per_second / len(self.entries):.3f}")
        return self.users

    def _finish(self) -> None:
        if self._stop_reading.is_set():
            return  # stop() then abort() (a signal while draining): read and count once
        self._stop_reading.set()
        if self._reader:
            self._reader.join(timeout=10)
        for entry, proc, _, folder, reader in self.procs:
            for rec in reader.leftovers():
                self.on_record(rec)
            self.totals[entry.name] = sipp_totals(folder / "stats.csv")
            self.on_event("sipp_totals", carrier=entry.name, exit_code=proc.returncode,
                          **self.totals[entry.name], logged=reader.ended)
        if self._secrets is not None:
            shutil.rmtree(self._secrets, ignore_errors=True)

    def stop(self, wait: float, interrupted: Callable[[], bool] = lambda: False) -> None:
        """`q` on the control port: no new calls, calls in progress end; then read the rest."""
        self.stopped_at = time.time()
        for _, proc, control, *_ in self.procs:
            if proc.poll() is None:
                self._control(control, "q")
        deadline = time.time() + wait + 5
        for _, proc, *_ in self.procs:
            while proc.poll() is None and time.time() < deadline and not interrupted():
                time.sleep(0.05)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._finish()

    def health(self) -> dict | None:
        """After the stop: calls SIPp created against those its schedule asked for. SIPp's own
        counts are exact only once it has exited, so nothing is said before."""
        if self.stopped_at is None or not self.totals:
            return None
        edges = self.rates + [(self.stopped_at, 0.0)]
        offered = round(sum(r * max(0.0, t1 - t0) for (t0, r), (t1, _) in zip(edges, edges[1:])))
        created = sum(t["sipp_total_calls"] or 0 for t in self.totals.values())
        # SIPp starts placing a moment after it is started: one call per entry point is not late
        missing = max(0, offered - created - len(self.entries))
        return {"offered": offered, "placed": created, "late": 0, "skipped": missing, "unplaced": 0,
                "loop_lag_p99": None, "loop_lag_max": None, "loop_samples": 0}

    def abort(self) -> None:
        for _, proc, *_ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._finish()

    def close(self) -> None:
        """stop() or abort() already waited for every SIPp process; none is left to reap."""


def sipp_totals(stats_csv: Path) -> dict:
    """SIPp's own cumulative counts from the last row of its -trace_stat file."""
    if not stats_csv.exists():
        return {"sipp_total_calls": None, "sipp_successful": None, "sipp_failed": None}
    rows = list(csv.DictReader(stats_csv.open(), delimiter=";"))
    if not rows:
        return {"sipp_total_calls": None, "sipp_successful": None, "sipp_failed": None}
    last = rows[-1]
    return {"sipp_total_calls": int(last["TotalCallCreated"]),
            "sipp_successful": int(last["SuccessfulCall(C)"]),
            "sipp_failed": int(last["FailedCall(C)"])}
