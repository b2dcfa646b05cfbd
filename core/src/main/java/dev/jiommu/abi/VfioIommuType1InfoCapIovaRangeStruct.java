package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U16;
import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/**
 * {@code struct vfio_iommu_type1_info_cap_iova_range} (the IOVA_RANGE capability of VFIO_IOMMU_GET_INFO,
 * 16 bytes and then {@code nr_iovas} ranges); each range is 16 bytes {start, end}, end inclusive.
 */
public final class VfioIommuType1InfoCapIovaRangeStruct {
    public static final StructLayout LAYOUT = structLayout(
            U16.withName("id"),
            U16.withName("version"),
            U32.withName("next"),
            U32.withName("nr_iovas"),
            U32.withName("reserved"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "reserved");
    /** sizeof(struct vfio_iova_range): {u64 start; u64 end;}. */
    public static final int RANGE_BYTES = 16;
    private static final long ID = Layouts.offset(LAYOUT, "id");
    private static final long VERSION = Layouts.offset(LAYOUT, "version");
    private static final long NEXT = Layouts.offset(LAYOUT, "next");
    private static final long NR_IOVAS = Layouts.offset(LAYOUT, "nr_iovas");

    private MemorySegment segment;
    private long base;

    public VfioIommuType1InfoCapIovaRangeStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int id() {
        return Short.toUnsignedInt(segment.get(U16, base + ID));
    }

    public VfioIommuType1InfoCapIovaRangeStruct id(int value) {
        segment.set(U16, base + ID, (short) value);
        return this;
    }

    public int version() {
        return Short.toUnsignedInt(segment.get(U16, base + VERSION));
    }

    public VfioIommuType1InfoCapIovaRangeStruct version(int value) {
        segment.set(U16, base + VERSION, (short) value);
        return this;
    }

    /** {@return the offset of the next capability, 0 for the last} */
    public int next() {
        return segment.get(U32, base + NEXT);
    }

    public VfioIommuType1InfoCapIovaRangeStruct next(int value) {
        segment.set(U32, base + NEXT, value);
        return this;
    }

    public long nrIovas() {
        return Integer.toUnsignedLong(segment.get(U32, base + NR_IOVAS));
    }

    public VfioIommuType1InfoCapIovaRangeStruct nrIovas(int value) {
        segment.set(U32, base + NR_IOVAS, value);
        return this;
    }
}
