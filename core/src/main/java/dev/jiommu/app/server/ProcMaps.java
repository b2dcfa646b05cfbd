package dev.jiommu.app.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The kernel's own account of a client's mappings (/proc/PID/maps): what a VA is backed by, which
 * the server needs where the kernel's answer depends on it (a shared mapping is the same memory in
 * every process that maps it; a memfd page mapped shared is the file's page; hugetlb memory is
 * physically contiguous).
 */
final class ProcMaps {
    /** One line: [start, end), perms ("rw-s"), file offset, inode, path (may be empty). */
    record Mapping(long start, long end, String perms, long offset, long inode, String path) {
        boolean shared() {
            return perms.length() >= 4 && perms.charAt(3) == 's';
        }

        boolean hugetlb() {
            return path.startsWith("/anon_hugepage") || path.startsWith("/dev/hugepages") || path.contains("hugetlb");
        }
    }

    private ProcMaps() {
    }

    /** {@return the mapping of {@code pid} that holds {@code va}, or null} */
    static Mapping find(int pid, long va) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/" + pid + "/maps"));
        } catch (IOException | UncheckedIOException e) {
            return null;
        }
        for (String line : lines) {
            String[] f = line.trim().split("\\s+", 6);
            if (f.length < 5) {
                continue;
            }
            int dash = f[0].indexOf('-');
            long start = Long.parseUnsignedLong(f[0], 0, dash, 16);
            long end = Long.parseUnsignedLong(f[0], dash + 1, f[0].length(), 16);
            if (Long.compareUnsigned(va, start) >= 0 && Long.compareUnsigned(va, end) < 0) {
                return new Mapping(start, end, f[1], Long.parseUnsignedLong(f[2], 16), Long.parseLong(f[4]), f.length > 5 ? f[5] : "");
            }
        }
        return null;
    }
}
