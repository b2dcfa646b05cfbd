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
    private final Access access;
    private final ProcMaps maps;
    /** Connections naming this context. Guarded by the server lock. */
    int connections;
    /** Derived files the client holds; the context closes when neither these nor connections remain. */
    int derivedFiles;
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
        this.maps = new ProcMaps(posix);
        this.access = new Access(access);
        this.user = new RemoteUserMemory(memory, this.access, pid);
        this.context = new IommufdContext(user, new MockIommuDriver(memory));
    }

    /** The server's process access, plus this context's memfd mirrors for shared file mappings. */
    private final class Access implements RemoteUserMemory.ProcessAccess {
        private final RemoteUserMemory.ProcessAccess process;
        /** The mapping last found, valid for the current call only (see {@link #newCall()}). */
        private ProcMaps.Mapping last;
        private int lastPid;

        ProcMaps.Mapping find(int pid, long va) {
            if (last != null && lastPid == pid && Long.compareUnsigned(va, last.start()) >= 0
                    && Long.compareUnsigned(va, last.end()) < 0) {
                return last;
            }
            ProcMaps.Mapping m = maps.find(pid, va);
            if (m != null) {
                last = m;
                lastPid = pid;
            }
            return m;
        }

        Access(RemoteUserMemory.ProcessAccess process) {
            this.process = process;
        }

        @Override
        public long read(int pid, long va, byte[] dst, int offset, int length) {
            return same(pid) ? process.read(pid, va, dst, offset, length) : -ESRCH;
        }

        @Override
        public long write(int pid, long va, byte[] src, int offset, int length) {
            return same(pid) ? process.write(pid, va, src, offset, length) : -ESRCH;
        }

        @Override
        public long sharedFrame(int pid, long va) {
            long[] offset = new long[1];
            FileMirror mirror = mirrorOf(pid, va, offset);
            return mirror == null ? -1 : mirror.file.physicalAddress(offset[0]);
        }

        @Override
        public int sharedPinCount(int pid, long va) {
            long[] offset = new long[1];
            FileMirror mirror = mirrorOf(pid, va, offset);
            return mirror == null ? -1 : mirror.file.pinCount(offset[0]);
        }

        @Override
        public boolean sharedMemory(int pid, long va) {
            ProcMaps.Mapping m = find(pid, va);
            return m != null && m.shared();
        }

        @Override
        public long hugePageBytes(int pid, long va) {
            ProcMaps.Mapping m = find(pid, va);
            return m != null && m.hugetlb() ? m.pageBytes() : 0;
        }
    }

    /** {@return the mirrored memfd page {@code pid} maps shared at {@code va}: the mirror and the file offset, or null} */
    private FileMirror mirrorOf(int pid, long va, long[] offset) {
        ProcMaps.Mapping m = files.isEmpty() ? null : access.find(pid, va);
        if (m == null || !m.shared()) {
            return null;
        }
        FileMirror mirror = files.get(m.inode());
        offset[0] = m.offset() + (va - m.start());
        return mirror != null && offset[0] < mirror.file.sizeBytes() ? mirror : null;
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

    private static final int ESRCH = 3;
    /** A pidfd for every process that called this context, opened while it was connected. */
    private final Map<Integer, Integer> pidfds = new HashMap<>();
    private int callerPid;

    /**
     * A call of process {@code pid} begins (it is connected, so it is that process): what was learnt
     * of the client's mappings may be stale, and the process is remembered by pidfd.
     */
    void newCall(int pid) {
        access.last = null;
        callerPid = pid;
        user.caller(pid);
        if (!pidfds.containsKey(pid)) {
            pidfds.put(pid, posix.pidfdOpen(pid));
        }
        applyLimits(pid);
    }

    private static final int CAP_IPC_LOCK = 14;
    private static final int CAP_SYS_RESOURCE = 24;
    /** What the context was last told of its caller's limits, to tell it only of changes. */
    private long appliedCaps = -2;
    private long appliedMemlockBytes = -2;

    /**
     * The caller's own RLIMIT_MEMLOCK and capabilities decide how its pins are charged, as they do in
     * the kernel: read from the kernel at each call (a process may drop CAP_IPC_LOCK after opening).
     */
    private void applyLimits(int pid) {
        long caps = posix.effectiveCapabilities(pid);
        long memlock = posix.memlockLimit(pid);
        if (caps >= 0 && caps != appliedCaps) {
            context.capIpcLock((caps & (1L << CAP_IPC_LOCK)) != 0);
            context.capSysResource((caps & (1L << CAP_SYS_RESOURCE)) != 0);
            appliedCaps = caps;
        }
        if (memlock >= 0 && memlock != appliedMemlockBytes) {
            context.memlockLimitPages(memlock == Long.MAX_VALUE ? Long.MAX_VALUE : memlock >>> 12);
            appliedMemlockBytes = memlock;
        }
    }

    /**
     * {@return whether {@code pid} is still the process that called this context} Pages pinned by a
     * process that has since exited must never reach another process that got its pid.
     */
    private boolean same(int pid) {
        if (pid == callerPid) {
            return true; // blocked in its call: alive
        }
        Integer pidfd = pidfds.get(pid);
        return pidfd != null && pidfd >= 0 && posix.pidfdAlive(pidfd);
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
        maps.close();
        for (int pidfd : pidfds.values()) {
            if (pidfd >= 0) {
                posix.close(pidfd);
            }
        }
        pidfds.clear();
        for (FileMirror m : files.values()) {
            posix.close(m.fd);
        }
        files.clear();
    }
}
