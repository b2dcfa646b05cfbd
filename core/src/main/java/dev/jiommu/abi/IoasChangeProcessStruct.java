package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_change_process} (IOMMU_IOAS_CHANGE_PROCESS, 8 bytes). */
public final class IoasChangeProcessStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("__reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");

    private MemorySegment segment;
    private long base;

    public IoasChangeProcessStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }
}
