package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_hw_queue_alloc} (IOMMU_HW_QUEUE_ALLOC, 40 bytes). */
public final class HwQueueAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("viommu_id"),
            U32.withName("type"),
            U32.withName("index"),
            U32.withName("out_hw_queue_id"),
            U64.withName("nesting_parent_iova"),
            U64.withName("length"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "length");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long VIOMMU_ID = Layouts.offset(LAYOUT, "viommu_id");
    private static final long TYPE = Layouts.offset(LAYOUT, "type");
    private static final long INDEX = Layouts.offset(LAYOUT, "index");
    private static final long OUT_HW_QUEUE_ID = Layouts.offset(LAYOUT, "out_hw_queue_id");
    private static final long NESTING_PARENT_IOVA = Layouts.offset(LAYOUT, "nesting_parent_iova");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");

    private MemorySegment segment;
    private long base;

    public HwQueueAllocStruct wrap(MemorySegment segment, long base) {
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

    public int index() {
        return segment.get(U32, base + INDEX);
    }

    public int outHwQueueId() {
        return segment.get(U32, base + OUT_HW_QUEUE_ID);
    }

    public HwQueueAllocStruct outHwQueueId(int value) {
        segment.set(U32, base + OUT_HW_QUEUE_ID, value);
        return this;
    }

    /** {@return the queue's guest-physical base: an IOVA of the parent HWPT's IOAS} */
    public long nestingParentIova() {
        return segment.get(U64, base + NESTING_PARENT_IOVA);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }
}
