package dev.jiommu.iommu.hwinfo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * {@code struct iommu_hw_info_vtd} (24 bytes, type INTEL_VTD = 1): flags u32 @0, reserved u32 @4,
 * cap_reg u64 @8 and ecap_reg u64 @16, the unit's Capability and Extended Capability registers.
 */
public record VtdHwInfo(int flags, long capReg, long ecapReg) {
    public static final int TYPE = 1;
    public static final int SIZE_BYTES = 24;
    /** flags: ERRATA_772415_SPR17, no read-only mappings in a nesting parent. */
    public static final int FLAG_ERRATA_772415_SPR17 = 1;

    public byte[] bytes() {
        return ByteBuffer.allocate(SIZE_BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(flags).putInt(0).putLong(capReg).putLong(ecapReg).array();
    }

    /** {@return the struct read from {@code bytes} (shorter input reads as zero-filled)} */
    public static VtdHwInfo parse(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(Arrays.copyOf(bytes, SIZE_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        return new VtdHwInfo(b.getInt(0), b.getLong(8), b.getLong(16));
    }
}
