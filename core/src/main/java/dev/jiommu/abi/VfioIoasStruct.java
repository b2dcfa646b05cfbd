package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U16;
import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_vfio_ioas} (IOMMU_VFIO_IOAS, 12 bytes). */
public final class VfioIoasStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("ioas_id"),
            U16.withName("op"),
            U16.withName("__reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long OP = Layouts.offset(LAYOUT, "op");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");

    private MemorySegment segment;
    private long base;

    public VfioIoasStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    public VfioIoasStruct ioasId(int value) {
        segment.set(U32, base + IOAS_ID, value);
        return this;
    }

    public int op() {
        return Short.toUnsignedInt(segment.get(U16, base + OP));
    }

    public int reserved() {
        return Short.toUnsignedInt(segment.get(U16, base + RESERVED));
    }
}
