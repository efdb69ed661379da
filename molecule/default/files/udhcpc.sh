#!/bin/sh
# busybox udhcpc script for one simulated miner's macvlan: the address only (no default
# route, no resolv.conf: the miners share one network namespace).
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/"; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/${mask:-16}" dev "$interface"
    fi ;;
esac
exit 0
