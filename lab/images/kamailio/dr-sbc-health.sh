#!/bin/sh
# Healthy when Kamailio answers its control socket and this SBC holds its own site's
# internal VIP (OWN_SITE_VIP): after a restart, keepalived takes the VIP back from the other
# site's SBC a few adverts later, and until then this SBC's calls to its PBX nodes could not
# be answered.
kamcmd core.uptime >/dev/null 2>&1 && ip -o -4 addr show | grep -q " $OWN_SITE_VIP/"
