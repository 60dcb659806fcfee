#!/bin/sh
# Healthy when Kamailio answers its control socket and this SBC holds its own site's
# internal VIP: after a restart, keepalived takes the VIP back from the other site's SBC
# a few adverts later, and until then this SBC's calls to its PBX nodes could not be answered.
kamcmd core.uptime >/dev/null 2>&1 || exit 1
for spec in $SITE_VIPS; do
  [ "${spec%%:*}" = "$SITE" ] || continue
  rest=${spec#*:}
  ip -o -4 addr show | grep -q " ${rest%%:*}/" || exit 1
done
