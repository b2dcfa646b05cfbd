package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_iova_ranges} (IOMMU_IOAS_IOVA_RANGES, 32 bytes); ranges are 16-byte {start, last}. */
public final class IoasIovaRangesStruct {
    public static final StructLayout LAYOUT = structLayout(U32.withName("size"), U32.withName("ioas_id"), U32.withName("num_iovas"),
            U32.withName("__reserved"), U64.withName("allowed_iovas"), U64.withName("out_iova_alignment"));
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_iova_alignment");
    /** sizeof(struct iommu_iova_range). */
    public static final int RANGE_BYTES = 16;
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long NUM_IOVAS = Layouts.offset(LAYOUT, "num_iovas");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long ALLOWED_IOVAS = Layouts.offset(LAYOUT, "allowed_iovas");
    private static final long OUT_IOVA_ALIGNMENT = Layouts.offset(LAYOUT, "out_iova_alignment");

    private MemorySegment segment;
    private long base;

    public IoasIovaRangesStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    /** {@return the capacity of the caller's array (in), or the number of ranges (out)} */
    public long numIovas() {
        return Integer.toUnsignedLong(segment.get(U32, base + NUM_IOVAS));
    }

    public IoasIovaRangesStruct numIovas(int count) {
        segment.set(U32, base + NUM_IOVAS, count);
        return this;
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    /** {@return the user pointer to the caller's iommu_iova_range array} */
    public long allowedIovas() {
        return segment.get(U64, base + ALLOWED_IOVAS);
    }

    public IoasIovaRangesStruct outIovaAlignment(long alignment) {
        segment.set(U64, base + OUT_IOVA_ALIGNMENT, alignment);
        return this;
    }
}
