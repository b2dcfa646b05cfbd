package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U16;
import static dev.jiommu.abi.Layouts.U32;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct vfio_iommu_type1_info_dma_avail} (the DMA_AVAIL capability of VFIO_IOMMU_GET_INFO, 12 bytes). */
public final class VfioIommuType1InfoDmaAvailStruct {
    public static final StructLayout LAYOUT = structLayout(
            U16.withName("id"),
            U16.withName("version"),
            U32.withName("next"),
            U32.withName("avail"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "avail");
    private static final long ID = Layouts.offset(LAYOUT, "id");
    private static final long VERSION = Layouts.offset(LAYOUT, "version");
    private static final long NEXT = Layouts.offset(LAYOUT, "next");
    private static final long AVAIL = Layouts.offset(LAYOUT, "avail");

    private MemorySegment segment;
    private long base;

    public VfioIommuType1InfoDmaAvailStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int id() {
        return Short.toUnsignedInt(segment.get(U16, base + ID));
    }

    public VfioIommuType1InfoDmaAvailStruct id(int value) {
        segment.set(U16, base + ID, (short) value);
        return this;
    }

    public int version() {
        return Short.toUnsignedInt(segment.get(U16, base + VERSION));
    }

    public VfioIommuType1InfoDmaAvailStruct version(int value) {
        segment.set(U16, base + VERSION, (short) value);
        return this;
    }

    /** {@return the offset of the next capability, 0 for the last} */
    public int next() {
        return segment.get(U32, base + NEXT);
    }

    public VfioIommuType1InfoDmaAvailStruct next(int value) {
        segment.set(U32, base + NEXT, value);
        return this;
    }

    /** {@return how many more DMA mappings the container allows (iommufd: U32_MAX)} */
    public int avail() {
        return segment.get(U32, base + AVAIL);
    }

    public VfioIommuType1InfoDmaAvailStruct avail(int value) {
        segment.set(U32, base + AVAIL, value);
        return this;
    }
}
