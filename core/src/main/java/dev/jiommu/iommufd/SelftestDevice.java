package dev.jiommu.iommufd;

/**
 * The SELFTEST object MOCK_DOMAIN makes: owns a mock device and its DEVICE binding; destroying it
 * detaches, unbinds and removes the device.
 */
final class SelftestDevice extends IommufdObject {
    private final IommufdContext context;
    final IommufdDevice idev;

    SelftestDevice(IommufdContext context, IommufdDevice idev) {
        super(ObjectType.SELFTEST);
        this.context = context;
        this.idev = idev;
    }

    @Override
    void destroy() {
        context.unbindSelftestDevice(this);
    }
}
