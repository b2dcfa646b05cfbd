package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_fault_alloc} (IOMMU_FAULT_QUEUE_ALLOC, 16 bytes). */
public final class FaultAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("out_fault_id"),
            U32.withName("out_fault_fd"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_fault_fd");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long OUT_FAULT_ID = Layouts.offset(LAYOUT, "out_fault_id");
    private static final long OUT_FAULT_FD = Layouts.offset(LAYOUT, "out_fault_fd");

    private MemorySegment segment;
    private long base;

    public FaultAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int outFaultId() {
        return segment.get(U32, base + OUT_FAULT_ID);
    }

    public FaultAllocStruct outFaultId(int value) {
        segment.set(U32, base + OUT_FAULT_ID, value);
        return this;
    }

    public int outFaultFd() {
        return segment.get(U32, base + OUT_FAULT_FD);
    }

    public FaultAllocStruct outFaultFd(int value) {
        segment.set(U32, base + OUT_FAULT_FD, value);
        return this;
    }
}
