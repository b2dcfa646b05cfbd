package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_hwpt_get_dirty_bitmap} (IOMMU_HWPT_GET_DIRTY_BITMAP, 48 bytes). */
public final class HwptGetDirtyBitmapStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("hwpt_id"),
            U32.withName("flags"),
            U32.withName("__reserved"),
            U64.withName("iova"),
            U64.withName("length"),
            U64.withName("page_size"),
            U64.withName("data"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "data");
    private static final long HWPT_ID = Layouts.offset(LAYOUT, "hwpt_id");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");
    private static final long PAGE_SIZE = Layouts.offset(LAYOUT, "page_size");
    private static final long DATA = Layouts.offset(LAYOUT, "data");

    private MemorySegment segment;
    private long base;

    public HwptGetDirtyBitmapStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int hwptId() {
        return segment.get(U32, base + HWPT_ID);
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public long pageSizeBytes() {
        return segment.get(U64, base + PAGE_SIZE);
    }

    /** {@return the user pointer to the bitmap (any byte alignment)} */
    public long data() {
        return segment.get(U64, base + DATA);
    }
}
