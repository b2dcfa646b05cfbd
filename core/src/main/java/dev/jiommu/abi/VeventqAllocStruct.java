package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_veventq_alloc} (IOMMU_VEVENTQ_ALLOC, 32 bytes; 28 in its first version). */
public final class VeventqAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("viommu_id"),
            U32.withName("type"),
            U32.withName("veventq_depth"),
            U32.withName("out_veventq_id"),
            U32.withName("out_veventq_fd"),
            U32.withName("__reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_veventq_fd");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long VIOMMU_ID = Layouts.offset(LAYOUT, "viommu_id");
    private static final long TYPE = Layouts.offset(LAYOUT, "type");
    private static final long VEVENTQ_DEPTH = Layouts.offset(LAYOUT, "veventq_depth");
    private static final long OUT_VEVENTQ_ID = Layouts.offset(LAYOUT, "out_veventq_id");
    private static final long OUT_VEVENTQ_FD = Layouts.offset(LAYOUT, "out_veventq_fd");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");

    private MemorySegment segment;
    private long base;

    public VeventqAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int viommuId() {
        return segment.get(U32, base + VIOMMU_ID);
    }

    public int type() {
        return segment.get(U32, base + TYPE);
    }

    /** {@return the most events the queue holds} */
    public long veventqDepth() {
        return Integer.toUnsignedLong(segment.get(U32, base + VEVENTQ_DEPTH));
    }

    public int outVeventqId() {
        return segment.get(U32, base + OUT_VEVENTQ_ID);
    }

    public VeventqAllocStruct outVeventqId(int value) {
        segment.set(U32, base + OUT_VEVENTQ_ID, value);
        return this;
    }

    public int outVeventqFd() {
        return segment.get(U32, base + OUT_VEVENTQ_FD);
    }

    public VeventqAllocStruct outVeventqFd(int value) {
        segment.set(U32, base + OUT_VEVENTQ_FD, value);
        return this;
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }
}
