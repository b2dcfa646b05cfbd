package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct vfio_iommu_type1_dma_unmap} (VFIO_IOMMU_UNMAP_DMA, 24 bytes); {@code size} is written back even when the unmap fails part way. */
public final class VfioIommuType1DmaUnmapStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("argsz"),
            U32.withName("flags"),
            U64.withName("iova"),
            U64.withName("size"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "size");
    private static final long ARGSZ = Layouts.offset(LAYOUT, "argsz");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");
    private static final long SIZE = Layouts.offset(LAYOUT, "size");

    private MemorySegment segment;
    private long base;

    public VfioIommuType1DmaUnmapStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public long argszBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + ARGSZ));
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    /** {@return the bytes to unmap (in), or unmapped (out)} */
    public long sizeBytes() {
        return segment.get(U64, base + SIZE);
    }

    public VfioIommuType1DmaUnmapStruct sizeBytes(long value) {
        segment.set(U64, base + SIZE, value);
        return this;
    }
}
