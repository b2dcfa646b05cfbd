package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_hwpt_alloc} (IOMMU_HWPT_ALLOC, 48 bytes; 24 in its first version). */
public final class HwptAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("dev_id"),
            U32.withName("pt_id"),
            U32.withName("out_hwpt_id"),
            U32.withName("__reserved"),
            U32.withName("data_type"),
            U32.withName("data_len"),
            U64.withName("data_uptr"),
            U32.withName("fault_id"),
            U32.withName("__reserved2"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long DEV_ID = Layouts.offset(LAYOUT, "dev_id");
    private static final long PT_ID = Layouts.offset(LAYOUT, "pt_id");
    private static final long OUT_HWPT_ID = Layouts.offset(LAYOUT, "out_hwpt_id");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long DATA_TYPE = Layouts.offset(LAYOUT, "data_type");
    private static final long DATA_LEN = Layouts.offset(LAYOUT, "data_len");
    private static final long DATA_UPTR = Layouts.offset(LAYOUT, "data_uptr");
    private static final long FAULT_ID = Layouts.offset(LAYOUT, "fault_id");
    private static final long RESERVED2 = Layouts.offset(LAYOUT, "__reserved2");

    private MemorySegment segment;
    private long base;

    public HwptAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int devId() {
        return segment.get(U32, base + DEV_ID);
    }

    public int ptId() {
        return segment.get(U32, base + PT_ID);
    }

    public int outHwptId() {
        return segment.get(U32, base + OUT_HWPT_ID);
    }

    public HwptAllocStruct outHwptId(int value) {
        segment.set(U32, base + OUT_HWPT_ID, value);
        return this;
    }

    public int reserved() {
        return segment.get(U32, base + RESERVED);
    }

    public int dataType() {
        return segment.get(U32, base + DATA_TYPE);
    }

    /** {@return the driver payload's length in bytes} */
    public long dataLenBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + DATA_LEN));
    }

    public long dataUptr() {
        return segment.get(U64, base + DATA_UPTR);
    }

    public int faultId() {
        return segment.get(U32, base + FAULT_ID);
    }

    public int reserved2() {
        return segment.get(U32, base + RESERVED2);
    }
}
