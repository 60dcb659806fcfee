#!/bin/sh
# Listen on the container's own address so Record-Route carries a reachable host.
set -e
ip=$(hostname -i | awk '{print $1}')
exec kamailio -DD -E -f /etc/kamailio-lab/kamailio.cfg -l "udp:$ip:5060" -l "tcp:$ip:5060"
