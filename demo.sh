#!/usr/bin/env bash
# Set up and run the first drill: a PBX node is killed under steady call load
# on the built-in sandbox hotline. Needs only python3 (3.11+) with venv and pip.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q -e .
drill validate scenarios/sandbox-pbx-node-loss.yaml
drill run --dry-run scenarios/sandbox-pbx-node-loss.yaml
exec drill run scenarios/sandbox-pbx-node-loss.yaml
