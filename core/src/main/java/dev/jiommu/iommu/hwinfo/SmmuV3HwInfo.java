package dev.jiommu.iommu.hwinfo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * {@code struct iommu_hw_info_arm_smmuv3} (40 bytes, type ARM_SMMUV3 = 2): flags u32 @0, reserved
 * u32 @4, idr[6] u32 @8…@28, iidr u32 @32, aidr u32 @36: the unit's ID registers as it reports them.
 */
public record SmmuV3HwInfo(int flags, int[] idr, int iidr, int aidr) {
    public static final int TYPE = 2;
    public static final int SIZE_BYTES = 40;
    /** flags: ERRATA_REPEAT_TLBI_CFGI, issue TLBI/CFGI + SYNC twice. */
    public static final int FLAG_ERRATA_REPEAT_TLBI_CFGI = 1;

    public SmmuV3HwInfo {
        if (idr.length != 6) {
            throw new IllegalArgumentException("SMMUv3 has IDR0 to IDR5, not " + idr.length + " registers");
        }
        idr = idr.clone();
    }

    @Override
    public int[] idr() {
        return idr.clone();
    }

    public byte[] bytes() {
        ByteBuffer b = ByteBuffer.allocate(SIZE_BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(flags).putInt(0);
        for (int r : idr) {
            b.putInt(r);
        }
        return b.putInt(iidr).putInt(aidr).array();
    }

    public static SmmuV3HwInfo parse(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(Arrays.copyOf(bytes, SIZE_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        int[] idr = new int[6];
        for (int i = 0; i < 6; i++) {
            idr[i] = b.getInt(8 + 4 * i);
        }
        return new SmmuV3HwInfo(b.getInt(0), idr, b.getInt(32), b.getInt(36));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SmmuV3HwInfo other && flags == other.flags && Arrays.equals(idr, other.idr) && iidr == other.iidr
                && aidr == other.aidr;
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(idr) + flags + 7 * iidr + 13 * aidr;
    }

    @Override
    public String toString() {
        return "SmmuV3HwInfo[flags=" + flags + ", idr=" + Arrays.toString(idr) + ", iidr=" + iidr + ", aidr=" + aidr + "]";
    }
}
