package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_viommu_alloc} (IOMMU_VIOMMU_ALLOC, 40 bytes; 24 in its first version). */
public final class ViommuAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("type"),
            U32.withName("dev_id"),
            U32.withName("hwpt_id"),
            U32.withName("out_viommu_id"),
            U32.withName("data_len"),
            U32.withName("__reserved"),
            U64.withName("data_uptr"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_viommu_id");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long TYPE = Layouts.offset(LAYOUT, "type");
    private static final long DEV_ID = Layouts.offset(LAYOUT, "dev_id");
    private static final long HWPT_ID = Layouts.offset(LAYOUT, "hwpt_id");
    private static final long OUT_VIOMMU_ID = Layouts.offset(LAYOUT, "out_viommu_id");
    private static final long DATA_LEN = Layouts.offset(LAYOUT, "data_len");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long DATA_UPTR = Layouts.offset(LAYOUT, "data_uptr");

    private MemorySegment segment;
    private long base;

    public ViommuAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int type() {
        return segment.get(U32, base + TYPE);
    }

    public int devId() {
        return segment.get(U32, base + DEV_ID);
    }

    public int hwptId() {
        return segment.get(U32, base + HWPT_ID);
    }

    public int outViommuId() {
        return segment.get(U32, base + OUT_VIOMMU_ID);
    }

    public ViommuAllocStruct outViommuId(int value) {
        segment.set(U32, base + OUT_VIOMMU_ID, value);
        return this;
    }

    /** {@return the driver payload's length in bytes} */
    public long dataLenBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + DATA_LEN));
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    /** {@return the user pointer to the driver payload, which the driver also writes back} */
    public long dataUptr() {
        return segment.get(U64, base + DATA_UPTR);
    }
}
