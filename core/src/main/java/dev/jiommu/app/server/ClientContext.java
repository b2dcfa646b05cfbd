package dev.jiommu.app.server;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RemoteUserMemory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
        this.user = new RemoteUserMemory(memory, new Access(access), pid);
        this.context = new IommufdContext(user, new MockIommuDriver(memory));
    }

    /** The server's process access, plus this context's memfd mirrors for shared file mappings. */
    private final class Access implements RemoteUserMemory.ProcessAccess {
        private final RemoteUserMemory.ProcessAccess process;

        Access(RemoteUserMemory.ProcessAccess process) {
            this.process = process;
        }

        @Override
        public long read(int pid, long va, byte[] dst, int offset, int length) {
            return process.read(pid, va, dst, offset, length);
        }

        @Override
        public long write(int pid, long va, byte[] src, int offset, int length) {
            return process.write(pid, va, src, offset, length);
        }

        @Override
        public long sharedFrame(int pid, long va) {
            return files.isEmpty() ? -1 : ClientContext.this.sharedFrame(pid, va);
        }
    }

    /**
     * {@return the frame of the mirrored memfd page that {@code pid} maps shared at {@code va}, or
     * −1}: the kernel's own account of the mapping (/proc/PID/maps: range, perms, offset, inode).
     */
    private long sharedFrame(int pid, long va) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/" + pid + "/maps"));
        } catch (IOException | UncheckedIOException e) {
            return -1;
        }
        for (String line : lines) {
            String[] f = line.trim().split("\\s+", 6);
            if (f.length < 5 || f[1].length() < 4 || f[1].charAt(3) != 's') {
                continue;
            }
            int dash = f[0].indexOf('-');
            long start = Long.parseUnsignedLong(f[0], 0, dash, 16);
            long end = Long.parseUnsignedLong(f[0], dash + 1, f[0].length(), 16);
            if (Long.compareUnsigned(va, start) < 0 || Long.compareUnsigned(va, end) >= 0) {
                continue;
            }
            FileMirror mirror = files.get(Long.parseLong(f[4]));
            if (mirror == null) {
                return -1;
            }
            long offset = Long.parseUnsignedLong(f[2], 16) + (va - start);
            try {
                return offset < mirror.file.sizeBytes() ? mirror.file.physicalAddress(offset) : -1;
            } catch (RuntimeException e) {
                return -1;
            }
        }
        return -1;
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
