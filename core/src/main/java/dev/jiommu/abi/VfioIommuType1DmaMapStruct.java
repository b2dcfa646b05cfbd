package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct vfio_iommu_type1_dma_map} (VFIO_IOMMU_MAP_DMA, 32 bytes). */
public final class VfioIommuType1DmaMapStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("argsz"),
            U32.withName("flags"),
            U64.withName("vaddr"),
            U64.withName("iova"),
            U64.withName("size"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "size");
    private static final long ARGSZ = Layouts.offset(LAYOUT, "argsz");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long VADDR = Layouts.offset(LAYOUT, "vaddr");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");
    private static final long SIZE = Layouts.offset(LAYOUT, "size");

    private MemorySegment segment;
    private long base;

    public VfioIommuType1DmaMapStruct wrap(MemorySegment segment, long base) {
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

    public long vaddr() {
        return segment.get(U64, base + VADDR);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public long sizeBytes() {
        return segment.get(U64, base + SIZE);
    }
}
