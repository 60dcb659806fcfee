#!/bin/sh
# One stats file per start, so counts of an instance that was killed are kept.
set -e
mkdir -p /stats
ip=$(hostname -i | awk '{print $1}')
touch /tmp/ready
exec sipp -sf /etc/sipp-uas.xml -i "$ip" -p 5060 -mi "$ip" -rtp_echo -aa -nostdin \
  -trace_stat -stf "/stats/stat-$(date +%s%N).csv" -fd 1 -max_socket 10000
