#!/usr/bin/env bash
# The test command: builds every module and runs every test (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/java-home.sh
exec ./mvnw -B -ntp verify "$@"
