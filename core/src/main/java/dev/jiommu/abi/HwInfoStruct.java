package dev.jiommu.abi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static dev.jiommu.abi.Layouts.U8;
import static java.lang.foreign.MemoryLayout.structLayout;

/**
 * {@code struct iommu_hw_info} (IOMMU_GET_HW_INFO, 40 bytes; 32 in its first version). The data type
 * is a union: the caller's wanted type in, the type reported out.
 */
public final class HwInfoStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("dev_id"),
            U32.withName("data_len"),
            U64.withName("data_uptr"),
            MemoryLayout.unionLayout(U32.withName("in_data_type"), U32.withName("out_data_type")).withName("data_type"),
            U8.withName("out_max_pasid_log2"),
            MemoryLayout.sequenceLayout(3, U8).withName("__reserved"),
            U64.withName("out_capabilities"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "__reserved");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long DEV_ID = Layouts.offset(LAYOUT, "dev_id");
    private static final long DATA_LEN = Layouts.offset(LAYOUT, "data_len");
    private static final long DATA_UPTR = Layouts.offset(LAYOUT, "data_uptr");
    private static final long IN_DATA_TYPE = Layouts.offset(LAYOUT, "data_type", "in_data_type");
    private static final long OUT_DATA_TYPE = Layouts.offset(LAYOUT, "data_type", "out_data_type");
    private static final long OUT_MAX_PASID_LOG2 = Layouts.offset(LAYOUT, "out_max_pasid_log2");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long OUT_CAPABILITIES = Layouts.offset(LAYOUT, "out_capabilities");

    private MemorySegment segment;
    private long base;

    public HwInfoStruct wrap(MemorySegment segment, long base) {
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

    /** {@return the caller's buffer size (in), or the size of the vendor struct the driver has (out)} */
    public long dataLenBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + DATA_LEN));
    }

    public HwInfoStruct dataLenBytes(int value) {
        segment.set(U32, base + DATA_LEN, value);
        return this;
    }

    /** {@return the user pointer to the caller's buffer for the vendor struct} */
    public long dataUptr() {
        return segment.get(U64, base + DATA_UPTR);
    }

    public int inDataType() {
        return segment.get(U32, base + IN_DATA_TYPE);
    }

    public HwInfoStruct outDataType(int value) {
        segment.set(U32, base + OUT_DATA_TYPE, value);
        return this;
    }

    public HwInfoStruct outMaxPasidLog2(int value) {
        segment.set(U8, base + OUT_MAX_PASID_LOG2, (byte) value);
        return this;
    }

    /** {@return byte {@code index} (0 to 2) of {@code __reserved[3]}} */
    public int reserved(int index) {
        return Byte.toUnsignedInt(segment.get(U8, base + RESERVED + java.util.Objects.checkIndex(index, 3)));
    }

    public HwInfoStruct outCapabilities(long value) {
        segment.set(U64, base + OUT_CAPABILITIES, value);
        return this;
    }
}
