#!/bin/sh
# TEST-ONLY stand-in for fluentd (not installable here): follow the controller's event log
# over the VPN as the admin (key login, SSH from tun0 only) and append it to the file the
# reducer follows. Usage: mapp-ship-events CONTROLLER_VPN_IP (as a service: systemd-run).
set -eu
exec ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ServerAliveInterval=5 \
  "admin@$1" 'tail -n +1 -F /var/lib/minectl/events/events.log' \
  >> /var/lib/minectl-ship/controller/events.log
