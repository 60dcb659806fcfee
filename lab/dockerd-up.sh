#!/usr/bin/env bash
# Start a Docker engine for the container lab and the docker injector tests,
# unless one already answers. Debian's docker.io package; no image is pulled.
# The daemon's pid goes to /run/hotline-drill-dockerd.pid, its log next to it.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "docker engine already running"; exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed: apt-get install docker.io" >&2; exit 2; }
log=/var/log/hotline-drill-dockerd.log
driver_opt=()
# overlay2 needs a filesystem that supports it; fall back to vfs where it does not
if ! grep -qw overlay /proc/filesystems; then driver_opt=(--storage-driver vfs); fi
nohup dockerd --pidfile /run/hotline-drill-dockerd.pid "${driver_opt[@]}" >"$log" 2>&1 &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then echo "docker engine up (pid $(cat /run/hotline-drill-dockerd.pid))"; exit 0; fi
  sleep 0.5
done
echo "dockerd did not come up within 60 s; its log ends:" >&2
tail -20 "$log" >&2
exit 1
