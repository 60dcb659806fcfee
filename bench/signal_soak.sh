#!/bin/sh
# SIGKILL or SIGTERM at a random moment of a drill with five fault families active, N times
# (default 20): after each, nothing may be left behind (after SIGKILL, once `drill recover`
# has run). Needs what .ci/run sets up (dockerd, Toxiproxy, root for the netns).
# Usage: bench/signal_soak.sh [TRIALS]
set -eu
cd "$(dirname "$0")/.."
HOTLINE_DRILL_SOAK_TRIALS="${1:-20}" exec python -m pytest -q -p no:cacheprovider \
    "tests/e2e/test_crash_all_families.py::test_a_signal_at_a_random_moment_leaves_nothing_behind"
