#!/usr/bin/env bash
# Runs the ported conformance cases against the real kernel: KernelIommufd on the /dev/iommu of the
# reference kernel (../shared/tools/refkernel, booted under QEMU). Prints per-class counts, every
# failure, and "verify-kernel: N passed, M failed, K skipped". Extra arguments name test classes to
# run instead of all: simple names in dev.jiommu.iommufd (IommufdIoasTest) or qualified ones.
#
# Needs the reference kernel built (its build.sh; about 5 minutes the first time, cached after).
# Not part of the default CI: a boot plus the run takes a few minutes under TCG.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/java-home.sh

default_refkernel=/work/shared/tools/refkernel
[ -d ../shared/tools/refkernel ] && default_refkernel=$(cd ../shared/tools/refkernel && pwd)
refkernel="${JIOMMU_REFKERNEL:-$default_refkernel}"
[ -x "$refkernel/run.sh" ] || { echo "verify-kernel: no reference kernel scripts at $refkernel (set JIOMMU_REFKERNEL)" >&2; exit 2; }
command -v rsync >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq rsync >/dev/null; }
"$refkernel/build.sh" >/dev/null

./mvnw -B -ntp -q -pl core test-compile
./mvnw -B -ntp -q -pl core dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt

stage="$(mktemp -d "${TMPDIR:-/tmp}/jiommu-verify-kernel.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
cp -r core/target/classes "$stage/classes"
cp -r core/target/test-classes "$stage/test-classes"
tr ':' '\n' < core/target/test-classpath.txt | while read -r jar; do [ -f "$jar" ] && cp "$jar" "$stage/lib/"; done

# JUnit's launcher logs through java.util.logging; the rest needs only java.base.
export JIOMMU_REFKERNEL_JMODS="${JIOMMU_REFKERNEL_JMODS:-java.logging}"
# A JVM that dies leaves hs_err_pid*.log in the guest's /job, gone with the guest: print its head.
# JIOMMU_VERIFY_VERBOSE=true prints each case as it starts (so a crash shows where).
exec "$refkernel/run.sh" --jre --vfio --mem 3G --hugepages 320 --timeout 1200 "$stage" -- \
  sh -c 'java --enable-native-access=ALL-UNNAMED -Xmx1g -Djiommu.verbose="${0}" -cp "classes:test-classes:lib/*" \
           dev.jiommu.iommufd.KernelConformance "$@"; rc=$?; for f in hs_err_pid*.log; do [ -f "$f" ] && head -80 "$f"; done; exit $rc' \
  "${JIOMMU_VERIFY_VERBOSE:-false}" "$@"
