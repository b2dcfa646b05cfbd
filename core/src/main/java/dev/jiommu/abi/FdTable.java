package dev.jiommu.abi;

import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;

/**
 * The caller's file descriptors, as far as iommufd commands name them. Files a command hands out
 * (a fault queue or vEVENTQ file, a selftest access, a selftest dma-buf) get a number here; numbers a
 * command takes (IOAS_MAP_FILE's memfd or dma-buf, the selftest's access and dma-buf fds) are looked
 * up here. An in-JVM caller uses {@link LocalFdTable}; the server implements it with the client's
 * real descriptors. Numbers are the kernel's: the lowest free one, never negative.
 */
public interface FdTable {
    /** A selftest access (CREATE_ACCESS) as its fd refers to it: closing the fd closes the access. */
    record SelftestAccess(IommufdSelftest selftest, int handle) {
    }

    /** Installs a fault queue or vEVENTQ file; closing the fd closes it. {@return the fd} EMFILE when the table is full */
    int install(IommufdFile file);

    /** Installs a memfd-like file (the caller's own; closing the fd does not free it). {@return the fd} */
    int install(MemoryFile file);

    /** Installs a dma-buf (its exporter releases it). {@return the fd} */
    int install(DmaBuf buf);

    /** Installs a selftest access; closing the fd closes the access and its pins. {@return the fd} */
    int install(SelftestAccess access);

    /**
     * {@return what {@code fd} refers to: an {@link IommufdFile}, {@link MemoryFile}, {@link DmaBuf},
     * {@link SelftestAccess}, or another object the caller opened that iommufd cannot use}
     *
     * @throws dev.jiommu.errno.ErrnoException EBADF when {@code fd} is not open
     */
    Object lookup(int fd);

    /** Closes {@code fd}. @throws dev.jiommu.errno.ErrnoException EBADF when it is not open */
    void close(int fd);
}
