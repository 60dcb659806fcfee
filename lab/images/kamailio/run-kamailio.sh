#!/bin/sh
# Listen on the container's own address so Record-Route carries a reachable host.
set -e
ip=$(hostname -i | awk '{print $1}')
# with a TLS configuration mounted (`drill lab up --docker --tls`), SIP over TLS on 5061 too
tls=""
[ -f /etc/kamailio-lab/tls.cfg ] && tls="-l tls:$ip:5061"
# shellcheck disable=SC2086
exec kamailio -DD -E -f /etc/kamailio-lab/kamailio.cfg -l "udp:$ip:5060" -l "tcp:$ip:5060" $tls
