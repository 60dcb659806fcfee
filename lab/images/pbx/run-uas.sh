#!/bin/sh
# One stats file per start, so counts of an instance that was killed are kept.
# A drill pauses PBX nodes (docker.pause, SIGSTOP) for 30 s and more: SIPp's watchdog
# counts each such gap as a "major trip" and by default quits after 10 within 10
# minutes, which would turn a string of pause drills into a dead node. A supervised
# production PBX carries on after a freeze, so the trips are not limited here.
set -e
mkdir -p /stats
ip=$(hostname -i | awk '{print $1}')
touch /tmp/ready
exec sipp -sf /etc/sipp-uas.xml -i "$ip" -p 5060 -mi "$ip" -rtp_echo -aa -nostdin \
  -trace_stat -stf "/stats/stat-$(date +%s%N).csv" -fd 1 -max_socket 10000 \
  -watchdog_major_maxtriggers 1000000 -watchdog_minor_maxtriggers 1000000
