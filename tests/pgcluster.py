"""Real PostgreSQL 15 clusters for the DR tests: a primary and a streaming hot standby on
loopback, each in its own folder, run as the `postgres` user (the server refuses root)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True,
                          text=True, timeout=60, check=check)


def scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hd-pg-"))
    shutil.chown(root, "postgres", "postgres")
    return root


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # a backend whose client left exited after the listing
            pass


class Cluster:
    def __init__(self, root: Path, name: str, port: int):
        self.dir, self.port, self.root = root / name, port, root
        self.log = root / f"{name}.log"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=1"

    def initdb(self, **settings) -> "Cluster":
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres",
                    "--no-sync")
        (self.dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n")
        self.configure(listen_addresses="127.0.0.1", wal_level="replica", max_wal_senders=5,
                       fsync="off", **settings)
        return self

    def basebackup(self, from_port: int, keeps_sync: bool = False) -> "Cluster":
        """A standby streaming from whatever listens at `from_port` (the primary, or a proxy
        in front of it: the replication link). `keeps_sync`: the misconfiguration that keeps
        the primary's synchronous setting, so once promoted every COMMIT waits for ever."""
        as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(from_port),
                    "-U", "postgres", "-D", str(self.dir), "-R", "-X", "stream")
        # once promoted it has no standby of its own: a synchronous setting copied from the
        # primary would make every commit wait forever (site B's own DR configuration)
        self.configure(hot_standby="on", wal_retrieve_retry_interval="200ms",
                       **({} if keeps_sync else {"synchronous_standby_names": ""}))
        return self

    def configure(self, **settings) -> None:
        with open(self.dir / "postgresql.conf", "a") as fh:
            for k, v in settings.items():
                fh.write(f"{k} = '{v}'\n")

    def start(self) -> "Cluster":
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-w",
                    "-o", f"-p {self.port} -k {self.root}", "start")
        return self

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        head = int((self.dir / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == head:
                children.append(int(stat.parent.name))
        return [head, *children]

    def kill(self) -> None:
        """The site dies: every process of the cluster frozen at once, then killed. The
        postmaster first, so it starts nothing more while its children are listed."""
        pids = self.pids()
        _signal(pids[:1], signal.SIGSTOP)
        pids = self.pids()
        _signal(pids, signal.SIGSTOP)
        _signal(pids, signal.SIGKILL)

    def freeze(self, frozen: bool = True) -> None:
        """The site hangs (SIGSTOP of every process; SIGCONT to thaw): its kernel still
        accepts connections and acknowledges bytes, its server answers nothing."""
        _signal(self.pids(), signal.SIGSTOP if frozen else signal.SIGCONT)

    def promote(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-w", "promote")

    def stop(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "stop",
                        check=False)

    def wait_replayed(self, sql: str, within: float = 20.0) -> None:
        """Until the standby answers `sql` with a row (what was written reached it)."""
        import psycopg
        deadline = time.time() + within
        while time.time() < deadline:
            try:
                with psycopg.connect(self.conninfo) as conn:
                    if conn.execute(sql).fetchone():
                        return
            except psycopg.Error:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the standby on {self.port} never showed: {sql}")


class Pair:
    """A primary (site A) and a streaming standby (site B), each reachable through Toxiproxy
    proxies of their own: `replication` carries the WAL stream, `site-a` the clients' way to
    the primary, so either can be cut with the harness's `toxiproxy.down`."""

    def __init__(self, sync: bool, standby_keeps_sync: bool = False):
        from harness.ops.toxiproxy_api import client
        from tests.conftest import free_tcp_port, need, wait_for
        if not (PG_BIN / "postgres").exists():
            raise AssertionError("PostgreSQL 15 is not installed; run .ci/run "
                                 "(apt-get install postgresql-15)")
        self.root = scratch_root()
        api_port = free_tcp_port()
        self.server = subprocess.Popen([need("toxiproxy-server"), "-host", "127.0.0.1",
                                        "-port", str(api_port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.api = f"127.0.0.1:{api_port}"
        self.primary = Cluster(self.root, "site-a", free_tcp_port())
        self.standby = Cluster(self.root, "site-b", free_tcp_port())
        wait_for(lambda: client(self.api).running(), 10, what="Toxiproxy API")
        settings = {"synchronous_standby_names": "*", "synchronous_commit": "remote_apply"} \
            if sync else {}
        self.primary.initdb(**settings).start()
        self.ports = {}
        for name in ("replication", "site-a"):
            created = client(self.api).create(upstream=f"127.0.0.1:{self.primary.port}", name=name,
                                              listen="127.0.0.1:0")
            self.ports[name] = int(created.listen.rsplit(":", 1)[1])
        self.standby.basebackup(self.ports["replication"], standby_keeps_sync).start()

    def link(self, name: str):
        from harness.scenario.inventory import Link, ToxiproxyRef
        return Link(name=name, kind="replication" if name == "replication" else "site",
                    toxiproxy=ToxiproxyRef(api=self.api, proxy=name))

    def multi_host(self, via_site_link: bool = False) -> str:
        """How clients that fail over connect: every server, the read-write one wanted."""
        first = self.ports["site-a"] if via_site_link else self.primary.port
        return (f"host=127.0.0.1,127.0.0.1 port={first},{self.standby.port} dbname=postgres "
                f"user=postgres connect_timeout=1 target_session_attrs=read-write")

    def close(self) -> None:
        for c in (self.standby, self.primary):
            c.stop()
        self.server.terminate()
        self.server.wait(5)
        subprocess.run(["rm", "-rf", str(self.root)], check=False)
