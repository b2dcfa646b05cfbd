package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_hwpt_invalidate} (IOMMU_HWPT_INVALIDATE, 32 bytes); {@code entry_num} is written back even on failure. */
public final class HwptInvalidateStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("hwpt_id"),
            U64.withName("data_uptr"),
            U32.withName("data_type"),
            U32.withName("entry_len"),
            U32.withName("entry_num"),
            U32.withName("__reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long HWPT_ID = Layouts.offset(LAYOUT, "hwpt_id");
    private static final long DATA_UPTR = Layouts.offset(LAYOUT, "data_uptr");
    private static final long DATA_TYPE = Layouts.offset(LAYOUT, "data_type");
    private static final long ENTRY_LEN = Layouts.offset(LAYOUT, "entry_len");
    private static final long ENTRY_NUM = Layouts.offset(LAYOUT, "entry_num");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");

    private MemorySegment segment;
    private long base;

    public HwptInvalidateStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int hwptId() {
        return segment.get(U32, base + HWPT_ID);
    }

    public long dataUptr() {
        return segment.get(U64, base + DATA_UPTR);
    }

    public int dataType() {
        return segment.get(U32, base + DATA_TYPE);
    }

    /** {@return the bytes of one entry} */
    public long entryLenBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + ENTRY_LEN));
    }

    /** {@return the entries given (in), or handled (out)} */
    public long entryNum() {
        return Integer.toUnsignedLong(segment.get(U32, base + ENTRY_NUM));
    }

    public HwptInvalidateStruct entryNum(int value) {
        segment.set(U32, base + ENTRY_NUM, value);
        return this;
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }
}
