package dev.jiommu.iommu;

/**
 * The selftest's mock bus: makes and removes test devices on demand (IOMMU_TEST_OP_MOCK_DOMAIN).
 * A platform that offers it lets a context run the kernel selftest's test operations.
 */
public interface SelftestDevices {
    /** Device without dirty tracking ({@code MOCK_FLAGS_DEVICE_NO_DIRTY}). */
    int NO_DIRTY = 1;
    /** PASID-capable device with 20 PASID bits ({@code MOCK_FLAGS_DEVICE_PASID}). */
    int PASID = 1 << 2;
    /** Every flag a test device may be created with. */
    int ALL_FLAGS = NO_DIRTY | PASID;

    /** {@return a new device on the mock bus, blocked until attached} */
    IommuDevice createDevice(int flags);

    /** Removes a device made by {@link #createDevice}; it must be detached everywhere. */
    void removeDevice(IommuDevice device);
}
