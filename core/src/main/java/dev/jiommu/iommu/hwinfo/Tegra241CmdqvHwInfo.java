package dev.jiommu.iommu.hwinfo;

import java.util.Arrays;

/**
 * {@code struct iommu_hw_info_tegra241_cmdqv} (8 bytes, type TEGRA241_CMDQV = 3): flags u32 @0,
 * version u8 @4, log2vcmdqs u8 @5, log2vsids u8 @6, reserved u8 @7.
 */
public record Tegra241CmdqvHwInfo(int flags, int version, int log2vcmdqs, int log2vsids) {
    public static final int TYPE = 3;
    public static final int SIZE_BYTES = 8;

    public byte[] bytes() {
        return new byte[] {(byte) flags, (byte) (flags >>> 8), (byte) (flags >>> 16), (byte) (flags >>> 24),
            (byte) version, (byte) log2vcmdqs, (byte) log2vsids, 0};
    }

    public static Tegra241CmdqvHwInfo parse(byte[] bytes) {
        byte[] b = Arrays.copyOf(bytes, SIZE_BYTES);
        int flags = (b[0] & 0xff) | (b[1] & 0xff) << 8 | (b[2] & 0xff) << 16 | (b[3] & 0xff) << 24;
        return new Tegra241CmdqvHwInfo(flags, b[4] & 0xff, b[5] & 0xff, b[6] & 0xff);
    }
}
