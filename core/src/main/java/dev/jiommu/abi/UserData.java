package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.UserMemory;

/**
 * Driver payloads passed by pointer ({@code data_uptr}/{@code data_len}: HWPT_ALLOC's stage-1 data,
 * VIOMMU_ALLOC's data), read from the caller's memory under the iommu core's rules (iommufd-uapi.md
 * §1.6), not the top-level struct's: a length the driver's struct cannot hold is EINVAL, never E2BIG.
 */
final class UserData {
    /** An empty payload, shared. */
    static final byte[] NONE = new byte[0];
    /**
     * The longest payload read. Every driver struct is far shorter (the longest, AMD's guest DTE, is
     * 32 bytes), so anything longer is the EINVAL the driver's size check would give, and a
     * caller's length never turns into a large allocation here.
     */
    static final long MAX_BYTES = UserMemory.PAGE_BYTES;

    private UserData() {
    }

    /**
     * {@return the {@code lengthBytes} bytes at {@code uptr}, empty when the length is 0}
     *
     * @throws ErrnoException EINVAL for a length above {@link #MAX_BYTES}; EFAULT for a bad pointer
     */
    static byte[] read(UserMemory caller, long uptr, long lengthBytes, String what) {
        if (lengthBytes == 0) {
            return NONE;
        }
        if (lengthBytes > MAX_BYTES) {
            throw ErrnoException.of(Errno.EINVAL, "%s: data_len %d is longer than any driver struct", what, lengthBytes);
        }
        return caller.read(uptr, (int) lengthBytes);
    }
}
