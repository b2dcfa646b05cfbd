#!/usr/bin/env bash
# The conformance score: the Linux kernel's own iommufd selftest (tools/testing/selftests/iommu/iommufd.c,
# unmodified, compiled on this host) run under native/libjiommu-preload.so against a fresh `jiommu serve`.
#
#   scripts/conformance.sh [-- HARNESS_ARGS]      e.g. -- -f iommufd_ioas   or   -- -t access_rw
#
# Prints the TAP summary, every failing case, and a closing line "selftest: N passed, M failed" (N counts
# skips as passed, as the harness's "N / T tests passed" does). Exit status: 0 when N is at least the floor
# in docs/conformance-floor.txt (a failing case alone never makes CI red), 1 when N dropped below the floor,
# 2 when the run itself broke (no compiler, no sources, the server or the selftest died).
#
# Needs: gcc, make, libcap-dev (installed with apt-get when missing and run as root), a JDK 25, and the
# selftest sources from the reference-kernel tools (JIOMMU_REFKERNEL_TOOLS, default /work/shared/tools/refkernel;
# sources.sh builds the reference kernel once when its cache is empty, about 4.5 min). The sources stay outside
# the repository (JIOMMU_SELFTEST_SRC, default ~/.cache/jiommu-selftest-src): they are GPL-2.0 and never committed.
# As root, 128 huge pages are reserved for the run (the selftest's MAP_HUGETLB cases) and the old count restored
# (JIOMMU_CONFORMANCE_NO_HUGEPAGES=1 leaves the sysctl alone; without free huge pages the floor drops by the
# 24 cases that need them).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/java-home.sh
harness_args=()
if [ "${1:-}" = "--" ]; then shift; harness_args=("$@"); fi

# The reference-kernel tools sit beside the clone (../shared) on our machines; /work/shared otherwise.
default_tools=/work/shared/tools/refkernel
[ -d "$root/../shared/tools/refkernel" ] && default_tools=$(cd "$root/../shared/tools/refkernel" && pwd)
tools=${JIOMMU_REFKERNEL_TOOLS:-$default_tools}
src=${JIOMMU_SELFTEST_SRC:-$HOME/.cache/jiommu-selftest-src}
floor_file=docs/conformance-floor.txt
broke() { echo "conformance: $*" >&2; exit 2; }

# ---- what the build needs -------------------------------------------------------------------------
missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v rsync >/dev/null || missing+=(rsync)
[ -f /usr/include/sys/capability.h ] || missing+=(libcap-dev)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || broke "missing ${missing[*]}; install them (apt-get install ${missing[*]})"
    echo "conformance: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } \
        || broke "apt-get install ${missing[*]} failed"
fi

# ---- the selftest, compiled here ------------------------------------------------------------------
if [ ! -f "$src/tools/testing/selftests/iommu/iommufd.c" ]; then
    [ -x "$tools/sources.sh" ] || broke "no $tools/sources.sh to fetch the selftest sources (set JIOMMU_REFKERNEL_TOOLS)"
    "$tools/sources.sh" "$src" >&2 || broke "sources.sh failed"
fi
make -s -C "$src" iommufd >&2 || broke "compiling the selftest failed"

# ---- the shim and the server ----------------------------------------------------------------------
native/build.sh || broke "building the shim failed"
shim=$root/native/build/libjiommu-preload.so
[ -f "$shim" ] || broke "no $shim"
app_jar=core/target/jiommu-core-0.1.0-SNAPSHOT-app.jar
if [ ! -f "$app_jar" ] || [ -n "$(find core/src/main core/pom.xml -newer "$app_jar" -type f -print -quit)" ]; then
    ./mvnw -B -ntp -q -o -pl core -am package -DskipTests -Djacoco.skip=true >&2 \
        || ./mvnw -B -ntp -q -pl core -am package -DskipTests -Djacoco.skip=true >&2 \
        || broke "building the application jar failed"
fi

work=$(mktemp -d)
socket=$work/jiommu.sock
old_hugepages=
server_pid=
cleanup() {
    local status=$?
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$old_hugepages" ]; then echo "$old_hugepages" > /proc/sys/vm/nr_hugepages 2>/dev/null || true; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
if [ "${JIOMMU_CONFORMANCE_NO_HUGEPAGES:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    current=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$current" -lt 128 ]; then
        old_hugepages=$current
        echo 128 > /proc/sys/vm/nr_hugepages || true
    fi
fi

# The selftest's MAP_HUGETLB cases need free huge pages (the largest, dirty128M_huge, 64 of 2 MiB). Where none
# can be had (not root, a read-only /proc/sys) those 24 cases cannot pass on any kernel: say so, and judge the
# run against the floor less them, so a machine without huge pages does not fail CI.
hugetlb_cases=24
huge_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
floor_allowance=0
if [ "${huge_free:-0}" -lt 66 ]; then
    echo "conformance: only ${huge_free:-0} free huge pages (66 needed): the $hugetlb_cases MAP_HUGETLB cases will fail here" >&2
    floor_allowance=$hugetlb_cases
fi

"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar "$app_jar" serve --socket "$socket" \
    > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { cat "$work/server.log" >&2; broke "the server did not start"; }

# ---- the run ------------------------------------------------------------------------------------
log=${JIOMMU_CONFORMANCE_LOG:-$work/selftest.tap}
start=$(date +%s)
set +e
(cd "$src" && JIOMMU_SOCKET=$socket LD_PRELOAD=$shim timeout 600 ./iommufd "${harness_args[@]}") > "$log" 2>&1
rc=$?
set -e
seconds=$(( $(date +%s) - start ))
kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; broke "the server died during the run"; }
if grep -v "listening on" "$work/server.log" | grep -q "jiommu serve:"; then
    echo "conformance: the server reported:" >&2
    grep -v "listening on" "$work/server.log" | grep "jiommu serve:" | sort | uniq -c | sort -rn | head -10 >&2
fi

totals=$(grep -m1 '^# Totals:' "$log" || true)
[ -n "$totals" ] || { tail -20 "$log" >&2; broke "the selftest ended without a summary (exit $rc)"; }
planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$log" | head -1)
passed=$(grep -c '^ok ' "$log" || true)
failed=$(grep -c '^not ok ' "$log" || true)
skipped=$(grep -c '^ok .*# SKIP' "$log" || true)

echo "conformance: kernel iommufd selftest against jiommu, ${seconds}s"
echo "TAP: planned ${planned:-?}, ok $passed (of which skip $skipped), not ok $failed"
echo "$totals"
grep '^not ok ' "$log" | sed 's/^/  /' || true
echo "selftest: $passed passed, $failed failed"

floor=$(grep -v '^#' "$floor_file" 2>/dev/null | head -1 | tr -d '[:space:]')
if [ -n "$floor" ] && [ "$floor_allowance" -gt 0 ]; then
    echo "conformance: without huge pages the floor is $floor - $floor_allowance" >&2
    floor=$((floor - floor_allowance))
fi
if [ ${#harness_args[@]} -eq 0 ] && [ -n "$floor" ] && [ "$passed" -lt "$floor" ]; then
    echo "conformance: $passed passed is below the floor of $floor ($floor_file)" >&2
    exit 1
fi
exit 0
