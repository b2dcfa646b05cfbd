#!/usr/bin/env bash
# Round-trip latency through the LD_PRELOAD shim: native/jiommu-bench (IOAS_IOVA_RANGES, 4 KiB IOAS_MAP and
# UNMAP, with and without a mock domain) beside a getppid() syscall measured in the same run, against a fresh
# `jiommu serve`. Usage: scripts/shim-bench.sh [ITERATIONS]   (default 20000)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/java-home.sh
native/build.sh
app_jar=core/target/jiommu-core-0.1.0-SNAPSHOT-app.jar
if [ ! -f "$app_jar" ] || [ -n "$(find core/src/main core/pom.xml -newer "$app_jar" -type f -print -quit)" ]; then
    ./mvnw -B -ntp -q -o -pl core -am package -DskipTests -Djacoco.skip=true >&2
fi
work=$(mktemp -d)
server_pid=
cleanup() {
    local status=$?
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar "$app_jar" serve --socket "$work/s" > "$work/log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do [ -S "$work/s" ] && break; sleep 0.1; done
[ -S "$work/s" ] || { cat "$work/log" >&2; exit 2; }
echo "jiommu shim round trip ($(nproc) CPUs, $(uname -r), $("$JAVA_HOME/bin/java" -version 2>&1 | head -1))"
JIOMMU_SOCKET=$work/s LD_PRELOAD=$root/native/build/libjiommu-preload.so native/build/jiommu-bench "${1:-20000}"
