#!/bin/sh
# DB_ROLE=primary: make a cluster on first start. DB_ROLE=standby: copy the peer
# (DB_PEER) with pg_basebackup and stream from it as a hot standby. DB_SYNC=1 makes
# the primary wait for the standby to apply each commit (remote_apply).
#
# Fencing on rejoin: a node that was primary and comes back (its container started
# again after a site loss) while its peer has been promoted must not serve as a
# second primary. It copies the new primary and rejoins as its standby, which is what
# a DR runbook does after a failover (the roles stay swapped until the lab is reset).
set -e
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
as_pg() { runuser -u postgres -- "$@"; }
peer_is_primary() {
  [ -n "$DB_PEER" ] && [ "$(as_pg psql -h "$DB_PEER" -U postgres -d postgres -Atc \
      'SELECT pg_is_in_recovery()' 2>/dev/null)" = "f" ]
}
copy_peer() {
  rm -rf "$data"; mkdir -p "$data"; chown postgres "$data"; chmod 700 "$data"
  until as_pg "$bin/pg_isready" -q -h "$DB_PEER"; do sleep 0.2; done
  as_pg "$bin/pg_basebackup" -h "$DB_PEER" -U postgres -D "$data" -R -X stream
  # once promoted it has no standby of its own: a synchronous setting copied from the
  # primary would make every commit wait forever
  cat >> "$data/postgresql.auto.conf" <<CONF
synchronous_standby_names = ''
hot_standby = on
wal_retrieve_retry_interval = '200ms'
CONF
  echo "copied $DB_PEER: standby"
}
mkdir -p /run/postgresql && chown postgres /run/postgresql
if [ ! -s "$data/PG_VERSION" ]; then
  if [ "$DB_ROLE" = standby ]; then
    copy_peer
  else
    mkdir -p "$data" && chown postgres "$data"
    as_pg "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    # the lab network only; trust is for the practice hotline, never for staging
    cat > "$data/pg_hba.conf" <<HBA
local all all trust
host all all 0.0.0.0/0 trust
host replication all 0.0.0.0/0 trust
HBA
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '*'
wal_level = replica
max_wal_senders = 5
fsync = off
wal_sender_timeout = '5s'
CONF
    if [ "$DB_SYNC" = 1 ]; then
      printf "synchronous_standby_names = '*'\nsynchronous_commit = 'remote_apply'\n" >> "$data/postgresql.conf"
    fi
    echo "new cluster: primary"
  fi
elif [ ! -e "$data/standby.signal" ] && peer_is_primary; then
  echo "fenced: $DB_PEER was promoted while this primary was away; rejoining as its standby"
  copy_peer
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data" -c wal_receiver_timeout=5s
