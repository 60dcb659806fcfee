"""A DR drill as a user runs it (`drill run`), with a data probe on a real PostgreSQL pair.

Calls flow through the sandbox hotline while the scenario's `probes:` heartbeat writer
commits through a multi-host connection string. The faults are the harness's own
`toxiproxy.down` on two links of the inventory: the replication link (cut at 3 s), then
site A's network (at 5 s: clients can no longer reach the primary). The standby is promoted
when site A's network goes down: the hotline's DR automation, which a drill measures and
never performs (here a watcher thread plays it, as keepalived's notify script would).

Known cause: the writes acknowledged between the replication cut and the site loss exist
only on the lost primary. Asserted: the lost writes are exactly those, RPO matches the time
between the two faults' windows within 0.25 s, writes came back on the standby, the RPO
target of 1 s is missed (exit 1) and the review answers "could we meet RTO/RPO today?";
after the rollback both servers take writes, and the drill names the split brain.
"""
import json
import threading
import time
from pathlib import Path

import pytest

import yaml

from harness.lab import sandbox
from harness.ops.toxiproxy_api import proxy as toxiproxy_proxy
from harness.probes import postgres as probe
from tests.conftest import last_run, run_scenario
from tests.pgcluster import Pair


def promote_when_site_a_goes_down(pair: Pair, stop: threading.Event) -> None:
    while not stop.is_set():
        if not toxiproxy_proxy(pair.api, "site-a").enabled:
            pair.standby.promote()
            return
        time.sleep(0.05)


def sandbox_with_links(pair: Pair, folder: Path, *links: str) -> Path:
    """The sandbox's inventory with the pair's links added (and allowlisted), written to a file."""
    inv = sandbox.up().model_dump(exclude_none=True)
    inv["links"] = [pair.link(name).model_dump(exclude_none=True) for name in links]
    inv["allowlist"] = [*inv["allowlist"], *links]
    path = folder / "dr-inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def orders_db(pair: Pair, **more) -> dict:
    """The data probe: writes through site A's link as clients fail over, lag read on B."""
    return {"type": "postgres", "id": "orders-db", "dsn": pair.multi_host(via_site_link=True),
            "standby": pair.standby.conninfo, **more}


def test_site_loss_after_a_replication_cut_loses_exactly_the_writes_since(isolated, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_RERUN_INCONCLUSIVE", "0")  # a DR drill runs once
    pair = Pair(sync=False)
    stop = threading.Event()
    try:
        inventory = sandbox_with_links(pair, tmp_path, "replication", "site-a")
        import psycopg
        with psycopg.connect(pair.primary.conninfo, autocommit=True) as conn:
            # the CDR table, empty: nothing in this practice hotline writes CDRs (the lab's
            # Kamailio acc would), so the known cause is "every answered call's CDR is missing"
            conn.execute("CREATE TABLE hd_cdr (callid text NOT NULL)")
        pair.standby.wait_replayed("SELECT 1 FROM pg_tables WHERE tablename = 'hd_cdr'")
        watcher = threading.Thread(target=promote_when_site_a_goes_down, args=(pair, stop))
        watcher.start()
        scenario = {
            "name": "dr-site-loss-after-cut",
            "description": "Replication cut, then site A's network lost; the standby promoted.",
            "target": str(inventory),
            "duration": "12s",
            "load": {"calls_per_second": 4, "hold": "2s", "rtp_share": "0%"},
            "probes": [orders_db(pair, cdr={"table": "hd_cdr", "grace": "0s"})],
            "faults": [{"id": "cut-replication", "type": "toxiproxy.down", "target": "replication",
                        "at": "3s"},
                       {"id": "site-a-down", "type": "toxiproxy.down", "target": "site-a",
                        "at": "5s"}],
            "sla": {"rpo": "1s", "rto": "30s", "traffic_shift": None, "failover_time": None,
                    "cdrs_lost": 0},
        }
        res, run, summary = run_scenario(tmp_path, scenario)
        with psycopg.connect(pair.standby.conninfo) as conn:  # its only footprint, gone again
            leftover = conn.execute("SELECT 1 FROM pg_tables WHERE tablename = %s",
                                    (probe.TABLE,)).fetchone()
    finally:
        stop.set()
        pair.close()
        sandbox.down()
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    (dr,) = summary["dr"]
    windows = {f["fault_id"]: f for f in summary["faults"]}
    cut_at = windows["cut-replication"]["started_at"]
    lost_at = windows["site-a-down"]["started_at"]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    (records,) = [e for e in events if e["event"] == "probe_records"]
    acked = {seq: acked for seq, _sent, acked, _server in records["acks"]}
    between = {seq for seq, at in acked.items() if cut_at < at < lost_at}
    lost = set(dr["rpo"]["lost_seqs"])
    # one write at either edge may fall either way (its WAL or its COMMIT in flight at the cut)
    assert len(lost ^ between) <= 2 and len(between) >= 15, (sorted(between), sorted(lost))
    assert abs(dr["rpo"]["seconds"] - (lost_at - cut_at)) <= 0.25, (dr["rpo"], lost_at - cut_at)
    back = dr["rto_writes"]
    assert back["new_primary"] == f"127.0.0.1:{pair.standby.port}" and back["seconds"] is not None
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert not verdicts["rpo"]["passed"] and verdicts["rto"]["passed"]
    # the primary was never stopped, only cut off behind its proxy: once the rollback enabled
    # the proxy again, it took writes beside the promoted standby (a split brain)
    assert dr["primaries"] == [f"127.0.0.1:{pair.ports['site-a']}",
                               f"127.0.0.1:{pair.standby.port}"], dr["primaries"]
    assert not verdicts["primaries"]["passed"] and verdicts["primaries"]["measured"] == 2
    # every answered call was looked up on the surviving database, and none had a CDR
    answered = summary["counts"]["answered"]
    assert dr["cdr"]["checked"] == answered == dr["cdr"]["lost"] > 10, dr["cdr"]
    assert not verdicts["cdrs_lost"]["passed"] and verdicts["cdrs_lost"]["measured"] == answered
    review = (run / "review.md").read_text()
    assert "could we meet RTO and RPO today?" in review and "orders-db" in review
    assert f"{answered} of {answered}" in review and "Answered calls without a CDR" in review
    assert "Disaster recovery" in (run / "report.html").read_text()
    assert not leftover, "the probe's scratch table is still on the surviving primary"


def _probe_drop_waiting(cluster) -> bool:
    """PostgreSQL's own view: the probe's cleanup (DROP TABLE) waits on a lock there."""
    import psycopg
    try:
        with psycopg.connect(cluster.conninfo, autocommit=True) as look:
            return look.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s", (f"DROP TABLE IF EXISTS {probe.TABLE}%",)).fetchone()[0] > 0
    except psycopg.Error:
        return False


@pytest.mark.serial
def test_a_promoted_standby_that_hangs_every_commit_reads_never_and_sigterm_ends_the_drill(
        isolated, tmp_path, monkeypatch):
    """Synchronous replication, site A cut off, the standby promoted, but it kept the
    primary's `synchronous_standby_names` (a common misconfiguration): every COMMIT on the
    new primary waits for a standby it no longer has. Known cause: no write can come back,
    so writes back reads "never" and `rto` fails; after the load, the probe's cleanup waits
    behind those commits' locks (seen in the server's own pg_stat_activity), and a SIGTERM
    sent then ends the drill within a second of it: exit 3, the report written, what the
    probe left named, nothing left in the journal."""
    import signal
    import subprocess
    import sys

    from harness.runner.journal import Journal
    from tests.conftest import wait_for
    monkeypatch.setenv("HOTLINE_DRILL_RERUN_INCONCLUSIVE", "0")
    pair = Pair(sync=True, standby_keeps_sync=True)
    stop = threading.Event()
    proc = None
    try:
        inventory = sandbox_with_links(pair, tmp_path, "site-a")
        watcher = threading.Thread(target=promote_when_site_a_goes_down, args=(pair, stop))
        watcher.start()
        scenario = {
            "name": "dr-promoted-standby-hangs-commits",
            "target": str(inventory),
            "duration": "8s",
            "load": {"calls_per_second": 4, "hold": "1s", "rtp_share": "0%"},
            "probes": [orders_db(pair)],
            "faults": [{"id": "site-a-down", "type": "toxiproxy.down", "target": "site-a",
                        "at": "3s"}],
            "sla": {"rto": "30s", "traffic_shift": None, "failover_time": None},
        }
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        out = tmp_path / "out"
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(path), "-o",
                                 str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        wait_for(lambda: _probe_drop_waiting(pair.standby), 40, every=0.02,
                 what="the probe's cleanup waiting behind the hanging commits")
        signalled = time.time()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        exited = time.time()
    finally:
        stop.set()
        if proc and proc.poll() is None:
            proc.kill()
        pair.close()
        sandbox.down()
    assert proc.returncode == 3, output[-3000:]
    run = last_run(out)
    summary = json.loads((run / "summary.json").read_text())
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    (aborted,) = [e for e in events if e["event"] == "run_aborted"]
    assert aborted["phase"] == "the data probes after the load" and "SIGTERM" in aborted["reason"]
    assert abs(aborted["requested_at"] - signalled) < 0.1
    assert aborted["rolled_back_in"] < 1.0, aborted  # the cleanup's lock wait (3 s) cut short
    (records,) = [e for e in events if e["event"] == "probe_records"]
    assert any("scratch table not dropped" in e and "remove it with" in e
               for e in records["errors"]), records["errors"]
    (dr,) = summary["dr"]
    assert dr["rto_writes"]["seconds"] is None  # writes never came back on another primary
    verdicts = {v["target"]: v for v in summary["verdicts"]}
    assert not verdicts["rto"]["passed"]
    (row,) = [r for r in (run / "review.md").read_text().splitlines()
              if r.startswith("| orders-db (postgres) |")]
    assert "| never |" in row and (run / "report.html").exists()
    assert "writes never came back" in output
    assert Journal(Path(isolated["HOTLINE_DRILL_STATE"]) / "journal.jsonl").open_faults() == []
    print(f"SIGTERM to exit {exited - signalled:.2f} s; the wait it cut ended "
          f"{aborted['rolled_back_in']:.2f} s after the signal")
