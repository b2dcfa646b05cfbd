package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_allow_iovas} (IOMMU_IOAS_ALLOW_IOVAS, 24 bytes); ranges are 16-byte {start, last}. */
public final class IoasAllowIovasStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("ioas_id"),
            U32.withName("num_iovas"),
            U32.withName("__reserved"),
            U64.withName("allowed_iovas"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "allowed_iovas");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long NUM_IOVAS = Layouts.offset(LAYOUT, "num_iovas");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long ALLOWED_IOVAS = Layouts.offset(LAYOUT, "allowed_iovas");

    private MemorySegment segment;
    private long base;

    public IoasAllowIovasStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    /** {@return how many {@code iommu_iova_range} entries the array holds} */
    public long numIovas() {
        return Integer.toUnsignedLong(segment.get(U32, base + NUM_IOVAS));
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    /** {@return the user pointer to the caller's iommu_iova_range array} */
    public long allowedIovas() {
        return segment.get(U64, base + ALLOWED_IOVAS);
    }
}
