package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;

import java.util.Arrays;

/**
 * An fd table inside the JVM, for callers that are not a separate process (tests, the CLI): numbers
 * from 3 up (0 to 2 are the standard streams), the lowest free one first, at most {@code limit}
 * open, like RLIMIT_NOFILE.
 *
 * <p>Thread safety: synchronized; closing a file runs outside the table's monitor, so a file's own
 * locks (its context's) never nest inside it.
 */
public final class LocalFdTable implements FdTable {
    /** The first number handed out. */
    public static final int FIRST_FD = 3;
    /** The default RLIMIT_NOFILE of a Linux process. */
    public static final int DEFAULT_LIMIT = 1024;

    private final int limit;
    /** fd → what it refers to; null when free. Guarded by this. */
    private Object[] files = new Object[16];

    public LocalFdTable() {
        this(DEFAULT_LIMIT);
    }

    /** @param limit the most numbers this table hands out (fds below {@code limit} are valid) */
    public LocalFdTable(int limit) {
        if (limit <= FIRST_FD) {
            throw new IllegalArgumentException("fd limit " + limit + " leaves no room above the standard streams");
        }
        this.limit = limit;
    }

    @Override
    public int install(IommufdFile file) {
        return installAny(file);
    }

    @Override
    public int install(MemoryFile file) {
        return installAny(file);
    }

    @Override
    public int install(DmaBuf buf) {
        return installAny(buf);
    }

    @Override
    public int install(SelftestAccess access) {
        return installAny(access);
    }

    /** Installs anything else the caller opened (a file iommufd cannot use). {@return the fd} */
    public int installOther(Object file) {
        return installAny(file);
    }

    private synchronized int installAny(Object file) {
        for (int fd = FIRST_FD; fd < limit; fd++) {
            if (fd >= files.length) {
                files = Arrays.copyOf(files, Math.min(limit, files.length * 2));
            }
            if (files[fd] == null) {
                files[fd] = file;
                return fd;
            }
        }
        throw ErrnoException.of(Errno.EMFILE, "no free fd below %d", limit);
    }

    @Override
    public synchronized Object lookup(int fd) {
        Object file = fd >= 0 && fd < files.length ? files[fd] : null;
        if (file == null) {
            throw ErrnoException.of(Errno.EBADF, "fd %d is not open", fd);
        }
        return file;
    }

    @Override
    public void close(int fd) {
        Object file;
        synchronized (this) {
            file = lookup(fd);
            files[fd] = null;
        }
        switch (file) {
            case IommufdFile f -> f.close();
            case SelftestAccess a -> a.selftest().closeAccess(a.handle());
            default -> {
                // memfds and dma-bufs belong to their owners; the fd was only a name for them
            }
        }
    }

    /** {@return how many fds are open} */
    public synchronized int openCount() {
        int n = 0;
        for (Object file : files) {
            if (file != null) {
                n++;
            }
        }
        return n;
    }
}
