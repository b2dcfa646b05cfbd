package dev.jiommu.iommu;

/**
 * What a driver reports for GET_HW_INFO: the vendor info type ({@code IOMMU_HW_INFO_TYPE_*}) and
 * the vendor struct's bytes, exactly as they go to userspace (type 0 and no bytes: nothing to say).
 */
public record DriverHwInfo(int type, byte[] bytes) {
    /** {@code IOMMU_HW_INFO_TYPE_DEFAULT}: "whatever the driver reports by default". */
    public static final int TYPE_DEFAULT = 0;

    public DriverHwInfo {
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }
}
