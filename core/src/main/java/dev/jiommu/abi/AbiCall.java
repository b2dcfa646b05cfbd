package dev.jiommu.abi;

import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.MemorySegment;

/**
 * One command in flight: the kernel-side copy of the caller's struct (already size-checked and
 * zero-extended), the typed API it runs against, and the caller's memory for the pointers inside.
 * A handler calls {@link #respond()} when the struct must be copied back, even if it then fails
 * (IOVA_RANGES with EMSGSIZE, HWPT_INVALIDATE's entry count).
 */
public final class AbiCall {
    private final Iommufd iommufd;
    private final UserMemory caller;
    private MemorySegment struct;
    private boolean respond;

    AbiCall(Iommufd iommufd, UserMemory caller) {
        this.iommufd = iommufd;
        this.caller = caller;
    }

    void reset(MemorySegment struct) {
        this.struct = struct;
        this.respond = false;
    }

    public Iommufd iommufd() {
        return iommufd;
    }

    /** {@return the caller's memory: where user pointers inside the struct point} */
    public UserMemory caller() {
        return caller;
    }

    /** {@return the struct, {@code sizeBytes()} of the command's layout, zero past what the caller sent} */
    public MemorySegment struct() {
        return struct;
    }

    /** Copies the struct back to the caller (up to the caller's size) when the call returns. */
    public void respond() {
        respond = true;
    }

    boolean responding() {
        return respond;
    }
}
