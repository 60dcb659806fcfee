#!/bin/sh
# One SBC of the two-site lab: keepalived holds the virtual IP (VRRP, unicast to the
# peer SBC) and Kamailio serves SIP on the VIP, its WAN address and its site address.
# Environment (set by `drill lab up --docker --sites 2`): SITE, VIP, WAN_IP, PEER_WAN,
# PRIORITY, ADVERT (seconds), LOCAL_DB, PEER_DB.
set -e
iface=$(ip -o -4 addr show | awk -v ip="$WAN_IP" 'index($4, ip "/") == 1 {print $2; exit}')
[ -n "$iface" ] || { echo "no interface holds $WAN_IP" >&2; exit 1; }
cat > /etc/keepalived/keepalived.conf <<CONF
global_defs {
  router_id sbc-$SITE
  script_user root
  enable_script_security
  vrrp_garp_master_refresh 1
}
vrrp_instance hotline {
  state BACKUP
  interface $iface
  virtual_router_id 51
  priority $PRIORITY
  advert_int $ADVERT
  unicast_src_ip $WAN_IP
  unicast_peer {
    $PEER_WAN
  }
  virtual_ipaddress {
    $VIP/24 dev $iface
  }
  notify_master "/usr/local/bin/dr-notify.sh master"
  notify_backup "/usr/local/bin/dr-notify.sh backup"
}
CONF
mkdir -p /var/log/hotline-drill
keepalived --dont-fork --log-console --log-detail >>/var/log/hotline-drill/keepalived.log 2>&1 &
# every address of this container (WAN, own site, other site: in-dialog requests that
# reach this SBC after a failover go on to the PBX where the call was set up) and the VIP,
# bound before keepalived holds it (ip_nonlocal_bind)
listen=""
for ip in $(ip -o -4 addr show | awk '$2 != "lo" {split($4, a, "/"); print a[1]}'); do
  [ "$ip" = "$VIP" ] || listen="$listen -l udp:$ip:5060"
done
exec kamailio -DD -E -f /etc/kamailio-lab/kamailio.cfg -l "udp:$VIP:5060" $listen -l "tcp:$WAN_IP:5060"
