package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_unmap} (IOMMU_IOAS_UNMAP, 24 bytes). */
public final class IoasUnmapStruct {
    public static final StructLayout LAYOUT = structLayout(U32.withName("size"), U32.withName("ioas_id"), U64.withName("iova"),
            U64.withName("length"));
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "length");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");

    private MemorySegment segment;
    private long base;

    public IoasUnmapStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public IoasUnmapStruct lengthBytes(long length) {
        segment.set(U64, base + LENGTH, length);
        return this;
    }
}
