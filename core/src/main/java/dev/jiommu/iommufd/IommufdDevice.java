package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;

import java.util.TreeMap;

/**
 * A device bound to the context (DEVICE). The binding driver holds a reference for as long as the
 * device stays bound, so DESTROY of its ID is always EBUSY; it goes when the driver unbinds. Its
 * attachments are per PASID, {@link IommuDriver#NO_PASID} standing for the RID.
 */
final class IommufdDevice extends IommufdObject {
    final IommuDevice device;
    /** PASID (or NO_PASID) → what it is attached to. Guarded by the context lock. */
    final TreeMap<Integer, Hwpt> attached = new TreeMap<>();
    /** The device's vDEVICE (at most one, in any vIOMMU), or null. */
    Vdevice vdevice;

    IommufdDevice(IommuDevice device) {
        super(ObjectType.DEVICE);
        this.device = device;
    }

    /** {@return what the RID is attached to, or null} */
    Hwpt rid() {
        return attached.get(IommuDriver.NO_PASID);
    }

    /** {@return whether any real PASID (not the RID) is attached} */
    boolean hasPasidAttachments() {
        return attached.size() > (attached.containsKey(IommuDriver.NO_PASID) ? 1 : 0);
    }

    @Override
    void destroy() {
        if (!attached.isEmpty()) {
            throw new IllegalStateException("bug: destroying " + this + " while attached at " + attached.keySet());
        }
    }
}
