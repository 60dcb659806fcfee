#!/bin/sh
# keepalived's notify script: the hotline's own DR automation, which a drill measures and
# never performs. When this site's SBC takes the virtual IP and the other site's database
# does not answer, this site's database is promoted (if it is a standby). A peer database
# that still answers means only an SBC failed: promoting then would split the data.
echo "$(date +%s.%N) $1" >> /var/log/hotline-drill/vrrp-transitions.log
[ "$1" = master ] || exit 0
/usr/lib/postgresql/15/bin/pg_isready -q -t 1 -h "$PEER_DB"
if [ $? -le 1 ]; then  # 0 accepting, 1 rejecting (starting up): the server is there
  echo "$(date +%s.%N) peer database $PEER_DB answers: no promotion" >> /var/log/hotline-drill/vrrp-transitions.log
  exit 0
fi
if [ "$(psql -h "$LOCAL_DB" -U postgres -d postgres -Atc 'SELECT pg_is_in_recovery()')" = t ]; then
  psql -h "$LOCAL_DB" -U postgres -d postgres -Atc 'SELECT pg_promote()' >/dev/null
  echo "$(date +%s.%N) promoted $LOCAL_DB" >> /var/log/hotline-drill/vrrp-transitions.log
fi
