#!/usr/bin/env bash
# Build the lab images from the local base image (cached: a second run takes seconds).
set -euo pipefail
cd "$(dirname "$0")"
base=${BASE:-hotline-drill/base:bookworm}
for dir in images/*/; do
  name=hotline-drill/$(basename "$dir")
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" -t "$name" "$dir" >/dev/null
  echo "built $name"
done
