package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_vdevice_alloc} (IOMMU_VDEVICE_ALLOC, 24 bytes). */
public final class VdeviceAllocStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("viommu_id"),
            U32.withName("dev_id"),
            U32.withName("out_vdevice_id"),
            U64.withName("virt_id"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "virt_id");
    private static final long VIOMMU_ID = Layouts.offset(LAYOUT, "viommu_id");
    private static final long DEV_ID = Layouts.offset(LAYOUT, "dev_id");
    private static final long OUT_VDEVICE_ID = Layouts.offset(LAYOUT, "out_vdevice_id");
    private static final long VIRT_ID = Layouts.offset(LAYOUT, "virt_id");

    private MemorySegment segment;
    private long base;

    public VdeviceAllocStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int viommuId() {
        return segment.get(U32, base + VIOMMU_ID);
    }

    public int devId() {
        return segment.get(U32, base + DEV_ID);
    }

    public int outVdeviceId() {
        return segment.get(U32, base + OUT_VDEVICE_ID);
    }

    public VdeviceAllocStruct outVdeviceId(int value) {
        segment.set(U32, base + OUT_VDEVICE_ID, value);
        return this;
    }

    /** {@return the device's ID as the guest knows it (vSID, vDeviceID, vRID)} */
    public long virtId() {
        return segment.get(U64, base + VIRT_ID);
    }
}
