#!/usr/bin/env bash
# Builds the native parts with the machine's gcc into native/build/ (the Maven build calls this):
#   libjiommu-preload.so   the LD_PRELOAD shim that sends /dev/iommu to a jiommu server
#   jiommu-bench           the round-trip benchmark (ioctl through the shim beside getppid())
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p build
CC=${CC:-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "native/build.sh: no C compiler ($CC); the shim is not built" >&2
    exit 0
fi
CFLAGS="-O2 -Wall -Wextra -Wno-unused-parameter -std=gnu11"
newer() { [ ! -f "$1" ] || [ -n "$(find "${@:2}" -newer "$1" 2>/dev/null)" ]; }
if newer build/libjiommu-preload.so jiommu_preload.c jiommu_proto.h build.sh; then
    $CC $CFLAGS -shared -fPIC -o build/libjiommu-preload.so jiommu_preload.c -ldl -lpthread
fi
if [ -f jiommu_bench.c ] && newer build/jiommu-bench jiommu_bench.c build.sh; then
    $CC $CFLAGS -o build/jiommu-bench jiommu_bench.c -lm
fi
