#!/bin/sh
# TEST-ONLY: N simulated miners on the mine LAN (eth1), each a macvlan with its own MAC
# (02:4d:a0:00:00:<N hex>, as in files/site.csv) whose address comes from the controller's
# dnsmasq by DHCP (busybox udhcpc, which keeps renewing). Once every miner has its lease,
# one simulator process serves all of them on their leased addresses.
# Usage: miners-up.sh N   (run as a service: systemd-run --unit mapp-miners ...)
set -eu
N=${1:-50}
D=/opt/mapp
PERS="s19 btminer bosminer"   # miner i: the personality of its site.csv model (i % 3)
sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
i=1
while [ "$i" -le "$N" ]; do
  mac=$(printf '02:4d:a0:00:00:%02x' "$i")
  ip link show "m$i" >/dev/null 2>&1 || ip link add "m$i" link eth1 address "$mac" type macvlan mode bridge
  ip link set "m$i" up
  busybox udhcpc -f -i "m$i" -s "$D/udhcpc.sh" -x "hostname:sim-$i" -t 5 -T 2 -A 3 >/dev/null 2>&1 </dev/null &
  i=$((i + 1))
done
echo "miners: $N DHCP clients started, waiting for their leases" >&2
while :; do
  have=0; i=1
  while [ "$i" -le "$N" ]; do
    ip -4 -o addr show dev "m$i" | grep -q inet && have=$((have + 1))
    i=$((i + 1))
  done
  [ "$have" -eq "$N" ] && break
  sleep 1
done
echo "miners: all $N leased" >&2
{
  echo "seed: 7"
  echo "ports: {api: 4028, http: off, ssh: off}"
  echo "miners:"
  i=1
  while [ "$i" -le "$N" ]; do
    addr=$(ip -4 -o addr show dev "m$i" | awk '{print $4}' | cut -d/ -f1)
    set -- $PERS; shift $((i % 3)); p=$1
    f=""; [ $((i % 10)) -eq 0 ] && [ "$i" -le 20 ] && f=", faults: [low_hashrate]"   # 2 underperformers
    printf '  - {ip: %s, mac: "%s", hostname: sim-%d, personality: %s%s}\n' "$addr" "$(printf '02:4d:a0:00:00:%02x' "$i")" "$i" "$p" "$f"
    i=$((i + 1))
  done
} > "$D/fleet.yaml.tmp"
mv "$D/fleet.yaml.tmp" "$D/fleet.yaml"
"$D/venv/bin/minectl" sim run --fleet "$D/fleet.yaml" --control /run/mapp-sim.sock --ready-file "$D/ready.json" &
wait
