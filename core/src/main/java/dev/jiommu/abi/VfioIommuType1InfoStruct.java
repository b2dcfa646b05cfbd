package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/**
 * {@code struct vfio_iommu_type1_info} (VFIO_IOMMU_GET_INFO, 24 bytes; 16 before capabilities); a chain
 * of capabilities may follow it, within {@code argsz}.
 */
public final class VfioIommuType1InfoStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("argsz"),
            U32.withName("flags"),
            U64.withName("iova_pgsizes"),
            U32.withName("cap_offset"),
            U32.withName("pad"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "iova_pgsizes");
    private static final long ARGSZ = Layouts.offset(LAYOUT, "argsz");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long IOVA_PGSIZES = Layouts.offset(LAYOUT, "iova_pgsizes");
    private static final long CAP_OFFSET = Layouts.offset(LAYOUT, "cap_offset");

    private MemorySegment segment;
    private long base;

    public VfioIommuType1InfoStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    /** {@return the caller's buffer size (in), or the size holding every capability (out)} */
    public long argszBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + ARGSZ));
    }

    public VfioIommuType1InfoStruct argszBytes(int value) {
        segment.set(U32, base + ARGSZ, value);
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public VfioIommuType1InfoStruct flags(int value) {
        segment.set(U32, base + FLAGS, value);
        return this;
    }

    /** {@return the bitmap of supported IOMMU page sizes} */
    public long iovaPgsizes() {
        return segment.get(U64, base + IOVA_PGSIZES);
    }

    public VfioIommuType1InfoStruct iovaPgsizes(long value) {
        segment.set(U64, base + IOVA_PGSIZES, value);
        return this;
    }

    /** {@return the offset of the first capability, 0 when the buffer could not hold them all} */
    public int capOffset() {
        return segment.get(U32, base + CAP_OFFSET);
    }

    public VfioIommuType1InfoStruct capOffset(int value) {
        segment.set(U32, base + CAP_OFFSET, value);
        return this;
    }
}
