package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_copy} (IOMMU_IOAS_COPY, 40 bytes). */
public final class IoasCopyStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("dst_ioas_id"),
            U32.withName("src_ioas_id"),
            U64.withName("length"),
            U64.withName("dst_iova"),
            U64.withName("src_iova"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "src_iova");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long DST_IOAS_ID = Layouts.offset(LAYOUT, "dst_ioas_id");
    private static final long SRC_IOAS_ID = Layouts.offset(LAYOUT, "src_ioas_id");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");
    private static final long DST_IOVA = Layouts.offset(LAYOUT, "dst_iova");
    private static final long SRC_IOVA = Layouts.offset(LAYOUT, "src_iova");

    private MemorySegment segment;
    private long base;

    public IoasCopyStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int dstIoasId() {
        return segment.get(U32, base + DST_IOAS_ID);
    }

    public int srcIoasId() {
        return segment.get(U32, base + SRC_IOAS_ID);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public long dstIova() {
        return segment.get(U64, base + DST_IOVA);
    }

    public IoasCopyStruct dstIova(long value) {
        segment.set(U64, base + DST_IOVA, value);
        return this;
    }

    public long srcIova() {
        return segment.get(U64, base + SRC_IOVA);
    }
}
