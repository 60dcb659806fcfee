#!/usr/bin/env bash
# Make the lab's base image locally: debootstrap a minimal Debian 12 and
# `docker import` it as hotline-drill/base:bookworm. No registry is used.
# Users who can pull may skip this and build the lab Dockerfiles with
# --build-arg BASE=debian:bookworm-slim.
set -euo pipefail
image=hotline-drill/base:bookworm
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image exists"; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap not installed: apt-get install debootstrap" >&2; exit 2; }
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/hotline-drill-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/hotline-drill-debootstrap.log 2>&1 || {
  echo "debootstrap failed; its log ends:" >&2; tail -20 /tmp/hotline-drill-debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "$image imported ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
