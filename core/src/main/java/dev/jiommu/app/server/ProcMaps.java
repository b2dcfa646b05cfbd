package dev.jiommu.app.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The kernel's own account of a client's mappings: what a VA is backed by, which the server needs
 * where the kernel's answer depends on it (a shared mapping is the same memory in every process
 * that maps it; a memfd page mapped shared is the file's page; hugetlb memory is physically
 * contiguous per huge page). Asked with the PROCMAP_QUERY ioctl on /proc/PID/maps (Linux 6.11+,
 * one VMA per call, no text), else by reading that file. One instance per context, used under the
 * server lock; {@link #close()} closes the maps files it keeps open.
 */
final class ProcMaps implements AutoCloseable {
    /** A VMA: [start, end), shared or not, its page size (a huge page size for hugetlb), file offset and inode. */
    record Mapping(long start, long end, boolean shared, long pageBytes, long offset, long inode) {
        boolean hugetlb() {
            return pageBytes > 4096;
        }
    }

    /** _IOWR('f', 17, struct procmap_query): 104 bytes. */
    private static final long PROCMAP_QUERY = 0xC0686611L;
    private static final long QUERY_BYTES = 104;
    private static final long VMA_SHARED = 0x08;
    private static final int ENOTTY = 25;
    private static final int ESRCH = 3;
    private static final int EINVAL = 22;

    private final Posix posix;
    private final MemorySegment query = Arena.ofAuto().allocate(QUERY_BYTES, 8);
    /** Open /proc/PID/maps by pid, or −1 where the ioctl is not there. */
    private final Map<Integer, Integer> files = new HashMap<>();
    private boolean noIoctl;

    ProcMaps(Posix posix) {
        this.posix = posix;
    }

    /** {@return the mapping of {@code pid} that holds {@code va}, or null (unmapped, or the process is gone)} */
    Mapping find(int pid, long va) {
        if (!noIoctl) {
            Integer fd = files.get(pid);
            if (fd == null) {
                fd = posix.openReadOnly("/proc/" + pid + "/maps");
                if (fd < 0) {
                    return null;
                }
                files.put(pid, fd);
            }
            query.fill((byte) 0);
            query.set(JAVA_LONG, 0, QUERY_BYTES);
            query.set(JAVA_LONG, 16, va);
            int r = posix.ioctl(fd, PROCMAP_QUERY, query);
            if (r == 0) {
                return new Mapping(query.get(JAVA_LONG, 24), query.get(JAVA_LONG, 32),
                        (query.get(JAVA_LONG, 40) & VMA_SHARED) != 0, query.get(JAVA_LONG, 48),
                        query.get(JAVA_LONG, 56), query.get(JAVA_LONG, 64));
            }
            if (r == -ESRCH) {
                forget(pid); // the process is gone; its pid may be reused
                return null;
            }
            if (r != -ENOTTY && r != -EINVAL) {
                return null; // ENOENT: nothing mapped there
            }
            noIoctl = true;
        }
        return parse(pid, va);
    }

    /** The text of /proc/PID/maps: range, perms, offset, dev, inode, path. */
    static Mapping parse(int pid, long va) {
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
                String path = f.length > 5 ? f[5] : "";
                boolean huge = path.startsWith("/anon_hugepage") || path.startsWith("/dev/hugepages");
                return new Mapping(start, end, f[1].length() >= 4 && f[1].charAt(3) == 's', huge ? 2L << 20 : 4096,
                        Long.parseUnsignedLong(f[2], 16), Long.parseLong(f[4]));
            }
        }
        return null;
    }

    /** The process {@code pid} is gone or no longer calls: forget its maps file. */
    void forget(int pid) {
        Integer fd = files.remove(pid);
        if (fd != null && fd >= 0) {
            posix.close(fd);
        }
    }

    @Override
    public void close() {
        for (int fd : files.values()) {
            if (fd >= 0) {
                posix.close(fd);
            }
        }
        files.clear();
    }
}
