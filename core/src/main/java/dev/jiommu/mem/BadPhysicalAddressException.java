package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

/** An access to physical memory that nobody allocated (or past its end): EFAULT, never a crash. */
public final class BadPhysicalAddressException extends ErrnoException {
    private final long address;

    BadPhysicalAddressException(long address, long lengthBytes, String why) {
        super(Errno.EFAULT, String.format("physical access pa=0x%x lengthBytes=0x%x: %s", address, lengthBytes, why));
        this.address = address;
    }

    /** {@return the first physical address of the refused access} */
    public long address() {
        return address;
    }
}
