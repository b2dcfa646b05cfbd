package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_hwpt_set_dirty_tracking} (IOMMU_HWPT_SET_DIRTY_TRACKING, 16 bytes); the kernel does not check {@code __reserved}. */
public final class HwptSetDirtyTrackingStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("hwpt_id"),
            U32.withName("__reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long HWPT_ID = Layouts.offset(LAYOUT, "hwpt_id");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");

    private MemorySegment segment;
    private long base;

    public HwptSetDirtyTrackingStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int hwptId() {
        return segment.get(U32, base + HWPT_ID);
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }
}
