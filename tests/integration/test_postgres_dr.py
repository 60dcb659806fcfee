"""RPO and RTO against real replication: a PostgreSQL 15 primary and a streaming hot standby
on loopback, the replication link through a real Toxiproxy proxy (cut with the harness's own
`toxiproxy.down`), the primary's "site" frozen and killed, the standby promoted (what the
hotline's DR automation does; here the test plays it). The heartbeat writer connects as real
clients fail over (several hosts, target_session_attrs=read-write).

Known causes, asserted figures:
- synchronous replication (remote_apply): the primary dies -> 0 acknowledged writes lost;
- asynchronous replication, link cut N s before the primary dies -> the lost writes are
  exactly those acknowledged after the cut, and RPO is N within 0.2 s.
"""
import time
import uuid

import pytest

from harness.faults.base import lookup
from harness.metrics.dr import lag_summary, replication_lag, rpo, rto_writes
from harness.probes import postgres as probe
from tests.conftest import wait_for
from tests.pgcluster import Pair


@pytest.fixture
def replicated(request):
    """(primary, standby, link): the standby streams from the primary through a Toxiproxy proxy."""
    pair = Pair(sync=request.param == "sync")
    try:
        probe.setup(pair.primary.conninfo)
        pair.standby.wait_replayed(f"SELECT 1 FROM pg_tables WHERE tablename = '{probe.TABLE}'")
        yield pair.primary, pair.standby, pair.link("replication")
    finally:
        pair.close()


def _writes_back_on(standby, writer, within: float = 20) -> str:
    """Until the writer has a write acknowledged by `standby` (promoted); its address."""
    new = f"127.0.0.1:{standby.port}"
    wait_for(lambda: any(a.server == new for a in writer.acked), within,
             what="a write acknowledged by the promoted standby")
    return new


def _fail_over(primary, standby, writer, lag):
    """Kill the primary's site, promote the standby, wait for the writer to find it."""
    killed_at = time.time()
    primary.kill()
    standby.promote()
    _writes_back_on(standby, writer)
    time.sleep(0.5)  # a few more ticks on the new primary
    acked, samples = writer.stop(), lag.stop()
    return killed_at, acked, samples


def _multi_host(primary, standby) -> str:
    return (f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} dbname=postgres "
            f"user=postgres connect_timeout=1 target_session_attrs=read-write")


@pytest.mark.parametrize("replicated", ["sync"], indirect=True)
def test_synchronous_replication_loses_no_acknowledged_write(replicated):
    primary, standby, _ = replicated
    run = uuid.uuid4().hex[:8]
    writer = probe.HeartbeatWriter(_multi_host(primary, standby), run).start()
    lag = probe.LagReader(standby.conninfo, run).start()
    wait_for(lambda: len(writer.acked) >= 20, 10, what="20 acknowledged writes")
    killed_at, acked, samples = _fail_over(primary, standby, writer, lag)
    kept = probe.surviving(standby.conninfo, run)
    figures = rpo(acked, kept)
    rto = rto_writes(acked, killed_at)
    print(f"sync: {figures['acked']} acknowledged, {figures['lost']} lost; "
          f"RTO of writes {rto['seconds']:.2f} s")
    assert figures["lost"] == 0 and figures["seconds"] == 0.0, figures
    assert {a.seq for a in acked} <= kept
    rto = rto_writes(acked, killed_at)
    assert rto["old_primary"] == f"127.0.0.1:{primary.port}"
    assert rto["new_primary"] == f"127.0.0.1:{standby.port}" and 0 < rto["seconds"] < 20
    assert lag_summary(samples)["samples"] > 0
    # synchronous: the standby never lacked an acknowledged write, and once the primary is
    # gone it is not behind on anything (the server's own replay age grows meanwhile)
    lags = [s.lag for s in replication_lag(acked, samples) if s.lag is not None]
    assert lags and max(lags) <= 0.2, lags


@pytest.mark.parametrize("replicated", ["async"], indirect=True)
def test_link_cut_before_the_primary_dies_loses_exactly_the_writes_since(replicated):
    primary, standby, link = replicated
    run, cut_for = uuid.uuid4().hex[:8], 2.0
    writer = probe.HeartbeatWriter(_multi_host(primary, standby), run).start()
    lag = probe.LagReader(standby.conninfo, run).start()
    wait_for(lambda: len(writer.acked) >= 20, 10, what="20 acknowledged writes")
    cls = lookup("toxiproxy.down")
    cut = cls("cut-replication", link, cls.Params.model_validate({}))
    asked_at = time.time()
    cut.inject()
    cut_at = time.time()
    assert cut.verify()
    time.sleep(cut_for)  # the cut's length is the cause under test
    killed_at, acked, samples = _fail_over(primary, standby, writer, lag)
    kept = probe.surviving(standby.conninfo, run)
    figures = rpo(acked, kept)
    on_old = [a for a in acked if a.acked_at < killed_at]
    after_cut = {a.seq for a in on_old if a.acked_at > cut_at}
    well_before = {a.seq for a in on_old if a.acked_at < asked_at - 0.05}
    lost = set(figures["lost_seqs"])
    print(f"async, link cut {killed_at - cut_at:.3f} s before the primary died: "
          f"{figures['lost']} of {figures['acked']} acknowledged writes lost "
          f"({len(after_cut)} acknowledged after the cut), RPO {figures['seconds']:.3f} s, "
          f"lag max {max((s.lag or 0) for s in samples):.2f} s")
    clearly_after = {a.seq for a in on_old if a.acked_at > cut_at + 0.05}
    assert clearly_after <= lost and not (well_before & lost), (sorted(after_cut), sorted(lost))
    # at the boundary, one write whose WAL left just before the cut (or whose COMMIT returned
    # while it was being made) may fall either way
    assert len(lost ^ after_cut) <= 1, (sorted(after_cut), sorted(lost))
    assert abs(figures["seconds"] - (killed_at - cut_at)) <= 0.2, (figures, killed_at - cut_at)
    assert abs(figures["seconds"] - cut_for) <= 0.2 + (cut_at - asked_at), figures
    during = [s.lag for s in samples if cut_at + 1.0 < s.at < killed_at and s.lag is not None]
    assert during and max(during) >= 1.0  # the standby visibly fell behind while cut off
    # lag read against acknowledged writes: just before the kill, the standby lacked every
    # write since the cut, so its lag was the time since the cut (to a sample's half second
    # and a writer tick); before the cut it lacked next to nothing
    lags = replication_lag(acked, samples)
    last = max((s for s in lags if s.at < killed_at and s.lag is not None), key=lambda s: s.at)
    assert abs(last.lag - (last.at - cut_at)) <= 0.25, (last, cut_at)
    assert all(s.lag <= 0.3 for s in lags if s.at < asked_at and s.lag is not None), lags


@pytest.mark.parametrize("replicated", ["async"], indirect=True)
def test_cdrs_written_during_a_replication_cut_are_the_ones_listed_missing(replicated):
    """The CDR check against a known cut: a CDR row (Kamailio acc's shape: `callid`) per call,
    written on the primary; the ones written while replication was cut die with the primary,
    and the check on the promoted standby names exactly those."""
    import psycopg
    primary, standby, link = replicated
    with psycopg.connect(primary.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS acc (id serial PRIMARY KEY, callid text NOT NULL)")
    before = [f"before-{i}@drill" for i in range(20)]
    during = [f"during-{i}@drill" for i in range(15)]

    def write_cdrs(ids):
        with psycopg.connect(primary.conninfo, autocommit=True) as conn:
            for call_id in ids:  # one acknowledged commit per CDR, as acc writes them
                conn.execute("INSERT INTO acc (callid) VALUES (%s)", (call_id,))

    write_cdrs(before)
    standby.wait_replayed(f"SELECT 1 FROM acc WHERE callid = '{before[-1]}'")
    cls = lookup("toxiproxy.down")
    cut = cls("cut-replication", link, cls.Params.model_validate({}))
    cut.inject()
    assert cut.verify()
    write_cdrs(during)
    primary.kill()
    standby.promote()
    found = probe.cdrs_found(standby.conninfo, "acc", "callid", before + during + ["never@drill"],
                             grace=0.5)
    assert set(before + during + ["never@drill"]) - found == set(during) | {"never@drill"}
    assert found == set(before)


@pytest.mark.parametrize("replicated", ["async"], indirect=True)
def test_a_frozen_primary_does_not_hold_the_writer(replicated):
    """A paused site: the primary's kernel acknowledges the writer's bytes and its server
    answers nothing. The writer gives the write up after its timeout and finds the promoted
    standby, as a client with a timeout does, instead of waiting for ever."""
    primary, standby, _ = replicated
    run = uuid.uuid4().hex[:8]
    writer = probe.HeartbeatWriter(_multi_host(primary, standby), run, write_timeout=1.0).start()
    try:
        wait_for(lambda: len(writer.acked) >= 10, 10, what="10 acknowledged writes")
        frozen_at = time.time()
        primary.freeze()
        standby.promote()
        new = _writes_back_on(standby, writer, 15)
        back = rto_writes(writer.stop(), frozen_at)
        # the write in flight is given up after 1 s; connecting skips the frozen server after
        # its 1 s connect timeout: writes are back within a few seconds, not never
        assert back["new_primary"] == new and 1.0 <= back["seconds"] <= 6.0, back
    finally:
        writer.stop()
        primary.freeze(False)


@pytest.mark.parametrize("replicated", ["async"], indirect=True)
def test_a_standby_promoted_beside_a_live_primary_is_reported_as_two_primaries(replicated):
    """The split brain a partition or a thawed site leaves: the standby promoted while the
    old primary still takes writes. Asked server by server, both answer read-write; with
    one server named there is nothing to compare."""
    primary, standby, _ = replicated
    both = _multi_host(primary, standby)
    assert probe.primaries(both) == [f"127.0.0.1:{primary.port}"]
    standby.promote()
    assert probe.primaries(both) == [f"127.0.0.1:{primary.port}", f"127.0.0.1:{standby.port}"]
    primary.kill()
    assert probe.primaries(both) == [f"127.0.0.1:{standby.port}"]
    assert probe.primaries(primary.conninfo) is None


@pytest.fixture
def stuck():
    """A server whose every COMMIT waits for ever: it names a synchronous standby that is
    not there (a promoted primary that kept its old `synchronous_standby_names`), with one
    probe write already waiting (PostgreSQL's own pg_stat_activity shows it on SyncRep),
    holding its lock on the probe's table."""
    import threading

    import psycopg

    from tests.conftest import free_tcp_port
    from tests.pgcluster import Cluster, scratch_root
    root = scratch_root()
    solo = Cluster(root, "stuck", free_tcp_port()).initdb(synchronous_standby_names="gone")
    solo.start()
    try:
        probe.setup(solo.conninfo)  # its own commit waits too: cut short by the session bound
        blocked = psycopg.connect(solo.conninfo)
        blocked.execute(f"INSERT INTO {probe.TABLE} (run, seq) VALUES ('x', 1)")
        threading.Thread(target=lambda: _commit_quietly(blocked), daemon=True).start()
        wait_for(lambda: _waiting_on_syncrep(solo) == 1, 10,
                 what="a COMMIT waiting for the synchronous standby")
        yield solo
    finally:
        solo.stop()


def _waiting_on_syncrep(cluster) -> int:
    import psycopg
    with psycopg.connect(cluster.conninfo, autocommit=True) as look:
        return look.execute("SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event = 'SyncRep'").fetchone()[0]


def test_a_server_whose_commits_hang_for_ever_cannot_hold_the_probes_statements(stuck):
    """The probe's cleanup, blocked behind those commits' locks, gives up within its lock
    timeout and says what it left; the drill is not held."""
    import psycopg
    t0 = time.time()
    with pytest.raises(psycopg.Error) as exc:
        probe.cleanup(stuck.conninfo)
    took = time.time() - t0
    assert "lock timeout" in str(exc.value)
    assert probe.LOCK_TIMEOUT_MS / 1000 - 0.5 <= took < probe.LOCK_TIMEOUT_MS / 1000 + 2
    assert probe.CLEANUP_BY_HAND == f"DROP TABLE IF EXISTS {probe.TABLE};"


@pytest.mark.serial
def test_a_stop_request_cuts_every_probe_wait_on_such_a_server_at_once(stuck):
    """Told to stop (a signal), a probe does not wait for its bounds: the cleanup behind the
    hanging commits and a heartbeat write waiting in its own COMMIT both end within a second
    of the request, far inside the lock timeout (3 s) and the write timeout (set to 30 s)."""
    import threading

    import psycopg
    interrupt = threading.Event()
    threading.Timer(0.3, interrupt.set).start()
    t0 = time.time()
    with pytest.raises(psycopg.Error):
        probe.cleanup(stuck.conninfo, interrupt)
    assert time.time() - t0 < 0.3 + 1.0
    with pytest.raises(probe.Stopped):  # asked once stopped: not begun at all
        probe.surviving(stuck.conninfo, "x", interrupt)

    waiting_before = _waiting_on_syncrep(stuck)
    writer = probe.HeartbeatWriter(stuck.conninfo, "w", rate=10, write_timeout=30).start()
    wait_for(lambda: _waiting_on_syncrep(stuck) > waiting_before, 10,
             what="the writer's COMMIT waiting for the synchronous standby")
    t0 = time.time()
    acked = writer.stop(hurry=True)
    assert time.time() - t0 < 1.0 and acked == []
    wait_for(lambda: writer.errors, 2, what="the writer's cut write recorded as unacknowledged")


def _commit_quietly(conn) -> None:
    try:
        conn.commit()
    except Exception:  # the server is stopped under it at the test's end
        pass
