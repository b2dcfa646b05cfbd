package dev.jiommu.iommu;

/**
 * A driver-specific payload (HWPT_ALLOC data, vIOMMU data) as its type tag and raw bytes, already
 * length-checked by the core's payload rules.
 */
public record DriverData(int type, byte[] bytes) {
    public DriverData {
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    /** {@return the little-endian u32 at {@code offset}, or 0 when the payload is shorter} */
    public int u32(int offset) {
        if (offset + 4 > bytes.length) {
            return 0;
        }
        return (bytes[offset] & 0xff) | (bytes[offset + 1] & 0xff) << 8 | (bytes[offset + 2] & 0xff) << 16 | (bytes[offset + 3] & 0xff) << 24;
    }
}
