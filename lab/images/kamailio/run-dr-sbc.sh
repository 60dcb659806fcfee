#!/bin/sh
# One SBC of the two-site lab: keepalived holds the virtual IP (VRRP, unicast to the
# peer SBC) and Kamailio serves SIP on the VIP, its WAN address and its site address.
# Environment (set by `drill lab up --docker --sites 2`): SITE, VIP, WAN_IP, PEER_WAN,
# PRIORITY, ADVERT (seconds), LOCAL_DB, PEER_DB, SITE_VIPS, OWN_SITE_VIP (the healthcheck's).
set -e
iface_of() { ip -o -4 addr show | awk -v ip="$1" 'index($4, ip "/") == 1 {print $2; exit}'; }
wan_if=$(iface_of "$WAN_IP")
[ -n "$wan_if" ] || { echo "no interface holds $WAN_IP" >&2; exit 1; }
# One VRRP instance per segment, each on its own: the WAN VIP (the carriers' way in) and each
# site's internal VIP, from which the SBC talks to that site's PBX nodes. A PBX answers the
# address a call came from, so a BYE that reaches the other site's SBC after a failover must
# leave from the same internal VIP: the survivor takes it over with the WAN VIP.
# SITE_VIPS: "<site>:<its internal VIP>:<the peer SBC's address there>:<ours there> ...".
instance() {  # name vip iface own_ip peer_ip priority id
  cat <<CONF
vrrp_instance $1 {
  state BACKUP
  interface $3
  virtual_router_id $7
  priority $6
  advert_int $ADVERT
  unicast_src_ip $4
  unicast_peer {
    $5
  }
  virtual_ipaddress {
    $2/24 dev $3
  }
CONF
  [ "$1" = wan ] && cat <<CONF
  notify_master "/usr/local/bin/dr-notify.sh master"
  notify_backup "/usr/local/bin/dr-notify.sh backup"
CONF
  echo "}"
}
{
  printf 'global_defs {\n  router_id sbc-%s\n  script_user root\n  enable_script_security\n  vrrp_garp_master_refresh 1\n}\n' "$SITE"
  instance wan "$VIP" "$wan_if" "$WAN_IP" "$PEER_WAN" "$PRIORITY" 51
  id=52
  for spec in $SITE_VIPS; do
    site=${spec%%:*}; rest=${spec#*:}; vip=${rest%%:*}; own=${rest#*:}; peer=${own%:*}; own=${own##*:}
    # the site's own SBC first; the other site's SBC is its backup
    [ "$site" = "$SITE" ] && prio=150 || prio=100
    instance "site_$site" "$vip" "$(iface_of "$own")" "$own" "$peer" "$prio" "$id"
    id=$((id + 1))
  done
} > /etc/keepalived/keepalived.conf
mkdir -p /var/log/hotline-drill
# a container killed and started again keeps its files: keepalived's pid files from before
# would make it believe it is already running and quit
rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid /run/keepalived/*.pid
keepalived --dont-fork --log-console --log-detail >>/var/log/hotline-drill/keepalived.log 2>&1 &
# every address of this container (WAN, own site, other site: in-dialog requests that
# reach this SBC after a failover go on to the PBX where the call was set up) and the VIP,
# bound before keepalived holds it (ip_nonlocal_bind)
listen=""
vips="$VIP"
for spec in $SITE_VIPS; do rest=${spec#*:}; vips="$vips ${rest%%:*}"; done
for ip in $(ip -o -4 addr show | awk '$2 != "lo" {split($4, a, "/"); print a[1]}'); do
  case " $vips " in *" $ip "*) ;; *) listen="$listen -l udp:$ip:5060" ;; esac
done
for ip in $vips; do listen="$listen -l udp:$ip:5060"; done
exec kamailio -DD -E -f /etc/kamailio-lab/kamailio.cfg $listen -l "tcp:$WAN_IP:5060"
