package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_alloc} (IOMMU_IOAS_ALLOC, 12 bytes). */
public final class IoasAllocStruct {
    public static final StructLayout LAYOUT = structLayout(U32.withName("size"), U32.withName("flags"), U32.withName("out_ioas_id"));
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_ioas_id");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long OUT_IOAS_ID = Layouts.offset(LAYOUT, "out_ioas_id");

    private MemorySegment segment;
    private long base;

    public IoasAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public IoasAllocStruct outIoasId(int id) {
        segment.set(U32, base + OUT_IOAS_ID, id);
        return this;
    }
}
