package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_noiommu_get_pa} (IOMMU_IOAS_NOIOMMU_GET_PA, 40 bytes, all of it mandatory). */
public final class IoasNoIommuGetPaStruct {
    public static final StructLayout LAYOUT = structLayout(U32.withName("size"), U32.withName("flags"), U32.withName("ioas_id"),
            U32.withName("__reserved"), U64.withName("iova"), U64.withName("length"), U64.withName("out_phys"));
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "out_phys");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");
    private static final long OUT_PHYS = Layouts.offset(LAYOUT, "out_phys");

    private MemorySegment segment;
    private long base;

    public IoasNoIommuGetPaStruct wrap(MemorySegment segment, long base) {
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

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public IoasNoIommuGetPaStruct lengthBytes(long length) {
        segment.set(U64, base + LENGTH, length);
        return this;
    }

    public IoasNoIommuGetPaStruct outPhys(long physicalAddress) {
        segment.set(U64, base + OUT_PHYS, physicalAddress);
        return this;
    }
}
