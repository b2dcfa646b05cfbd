package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_map} (IOMMU_IOAS_MAP, 40 bytes), a flyweight over a buffer. */
public final class IoasMapStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("ioas_id"),
            U32.withName("__reserved"),
            U64.withName("user_va"),
            U64.withName("length"),
            U64.withName("iova"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "iova");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long USER_VA = Layouts.offset(LAYOUT, "user_va");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");

    private MemorySegment segment;
    private long base;

    public IoasMapStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    public long userVa() {
        return segment.get(U64, base + USER_VA);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public IoasMapStruct iova(long iova) {
        segment.set(U64, base + IOVA, iova);
        return this;
    }
}
