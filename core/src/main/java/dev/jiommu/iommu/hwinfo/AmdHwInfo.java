package dev.jiommu.iommu.hwinfo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * {@code struct iommu_hw_info_amd} (16 bytes, type AMD = 4): efr u64 @0 and efr2 u64 @8, the
 * Extended Feature Registers a VMM reads (GTSup, GASup, GIoSup, PPRSup, EPHSup, GATS, GLX, PASmax).
 */
public record AmdHwInfo(long efr, long efr2) {
    public static final int TYPE = 4;
    public static final int SIZE_BYTES = 16;

    public byte[] bytes() {
        return ByteBuffer.allocate(SIZE_BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(efr).putLong(efr2).array();
    }

    public static AmdHwInfo parse(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(Arrays.copyOf(bytes, SIZE_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        return new AmdHwInfo(b.getLong(0), b.getLong(8));
    }
}
