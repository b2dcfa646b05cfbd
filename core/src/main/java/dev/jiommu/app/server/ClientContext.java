package dev.jiommu.app.server;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RemoteUserMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * One iommufd a client opened: the emulated context with its own mock bus, the opener's memory,
 * the memfds it mapped, its MMIO mappings, and how many connections (the opener's and those of
 * processes that inherited the fd) still name it. Guarded by the server lock.
 */
final class ClientContext {
    final long token;
    final RemoteUserMemory user;
    final IommufdContext context;
    private final Posix posix;
    /** Connections naming this context; it closes when the last goes. */
    int connections;
    /** Memfds mapped with IOAS_MAP_FILE, by inode: the server's copy of their pages. */
    private final Map<Long, FileMirror> files = new HashMap<>();
    private final Map<Long, Iommufd.MmioMapping> mappings = new HashMap<>();
    private long nextMapping = 1;

    /** A client memfd as a {@link MemoryFile}, kept coherent like pinned process pages. */
    private static final class FileMirror {
        final int fd;
        final MemoryFile file;
        /** Page offset → the bytes last synced. */
        final Map<Long, byte[]> copies = new HashMap<>();

        FileMirror(int fd, MemoryFile file) {
            this.fd = fd;
            this.file = file;
        }
    }

    ClientContext(long token, PhysicalMemory memory, RemoteUserMemory.ProcessAccess access, int pid, Posix posix) {
        this.token = token;
        this.posix = posix;
        this.user = new RemoteUserMemory(memory, access, pid);
        this.context = new IommufdContext(user, new MockIommuDriver(memory));
    }

    /**
     * {@return the server's file for the client memfd {@code fd} (a descriptor of this process,
     * which this context keeps when it is new, and closes otherwise)}
     */
    MemoryFile file(int fd, Posix.Stat stat, boolean writable) {
        FileMirror mirror = files.get(stat.inode());
        if (mirror != null) {
            posix.close(fd);
            if (mirror.file.sizeBytes() != stat.sizeBytes()) {
                mirror.file.truncate(stat.sizeBytes());
            }
            return mirror.file;
        }
        mirror = new FileMirror(fd, new MemoryFile(user.physicalMemory(), "memfd ino " + stat.inode(), stat.sizeBytes(), writable));
        files.put(stat.inode(), mirror);
        return mirror.file;
    }

    /** Brings every pinned page (process memory and memfds) up to the client's bytes. */
    void syncIn() {
        user.syncIn();
        MemorySegment buf = posix.scratch(RemoteUserMemory.PAGE_BYTES);
        for (FileMirror m : files.values()) {
            long size = m.file.sizeBytes();
            for (long off = 0; off < size; off += RemoteUserMemory.PAGE_BYTES) {
                if (m.file.pinCount(off) == 0) {
                    m.copies.remove(off);
                    continue;
                }
                int n = (int) Math.min(RemoteUserMemory.PAGE_BYTES, size - off);
                if (posix.pread(m.fd, buf, n, off) != n) {
                    continue;
                }
                byte[] bytes = buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                if (!Arrays.equals(bytes, m.copies.get(off))) {
                    m.file.write(off, bytes);
                    m.copies.put(off, bytes);
                }
            }
        }
    }

    /** Writes back what a device changed since {@link #syncIn()}. */
    void syncOut() {
        user.syncOut();
        MemorySegment buf = posix.scratch(RemoteUserMemory.PAGE_BYTES);
        for (FileMirror m : files.values()) {
            for (Map.Entry<Long, byte[]> e : m.copies.entrySet()) {
                byte[] now = m.file.read(e.getKey(), e.getValue().length);
                if (!Arrays.equals(now, e.getValue())) {
                    MemorySegment.copy(now, 0, buf, ValueLayout.JAVA_BYTE, 0, now.length);
                    posix.pwrite(m.fd, buf, now.length, e.getKey());
                    e.setValue(now);
                }
            }
        }
    }

    /** {@return a handle for an mmap of the context} */
    long addMapping(Iommufd.MmioMapping mapping) {
        long handle = nextMapping++;
        mappings.put(handle, mapping);
        return handle;
    }

    void removeMapping(long handle) {
        Iommufd.MmioMapping m = mappings.remove(handle);
        if (m != null) {
            m.close();
        }
    }

    /** The last connection went: every object, pin and mapping goes. */
    void close() {
        for (Iommufd.MmioMapping m : mappings.values()) {
            m.close();
        }
        mappings.clear();
        context.close();
        for (FileMirror m : files.values()) {
            posix.close(m.fd);
        }
        files.clear();
    }
}
