package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_destroy} (IOMMU_DESTROY, 8 bytes). */
public final class DestroyStruct {
    public static final StructLayout LAYOUT = structLayout(U32.withName("size"), U32.withName("id"));
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "id");
    private static final long ID = Layouts.offset(LAYOUT, "id");

    private MemorySegment segment;
    private long base;

    public DestroyStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int id() {
        return segment.get(U32, base + ID);
    }
}
