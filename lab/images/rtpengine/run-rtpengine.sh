#!/bin/sh
# Media on the container's own address; the ng control port on the same address
# (the lab network only); its CLI on the container's loopback (the default, [::1],
# does not exist without IPv6). --table=-1: userspace forwarding, no kernel module.
# --tos=184: its RTP marked DSCP EF, as an SBC's media relay marks voice (a priority
# queue in the path can then protect it); --control-tos=96: its ng answers marked CS3,
# as signalling is (a delete's answer, with its call statistics, outgrows one packet: its
# fragments carry the marking, not the port)
set -e
ip=$(hostname -i | awk '{print $1}')
exec rtpengine --foreground --log-stderr --log-level=5 --table=-1 \
  --interface="$ip" --listen-ng="$ip:2223" --listen-cli=127.0.0.1:2224 --port-min=30000 --port-max=31999 \
  --timeout=60 --silent-timeout=3600 --delete-delay=0 --tos=184 --control-tos=96
