package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDevice;

/**
 * A device bound to the context (DEVICE). The binding driver holds a reference for as long as the
 * device stays bound, so DESTROY of its ID is always EBUSY; it goes when the driver unbinds.
 */
final class IommufdDevice extends IommufdObject {
    final IommuDevice device;
    /** What the RID is attached to, or null. */
    HwptPaging rid;
    /** The IOAS whose reserved list holds this device's reserved regions, or null. */
    Ioas reservedIn;

    IommufdDevice(IommuDevice device) {
        super(ObjectType.DEVICE);
        this.device = device;
    }

    @Override
    void destroy() {
        if (rid != null) {
            throw new IllegalStateException("bug: destroying " + this + " while attached");
        }
    }
}
