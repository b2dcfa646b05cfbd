package dev.jiommu.iommu;

import java.util.List;

/**
 * A device behind an IOMMU, as the IOMMU core sees it: who drives it and what it can do. Each
 * device is its own iommu group here (the mock's and PCIe's usual case).
 */
public interface IommuDevice {
    /** {@return the driver of the IOMMU this device sits behind} */
    IommuDriver driver();

    /** {@return a name for messages, e.g. "iommufd_mock3" or "0000:00:03.0"} */
    String name();

    /** {@return the IOVA ranges this device may not DMA to (applied to its RID attachment)} */
    List<ReservedRegion> reservedRegions();

    /** {@return whether the IOMMU can track this device's DMA writes (dirty tracking)} */
    boolean dirtyTrackingCapable();

    /** {@return the width of the device's PASIDs in bits; 0 when it has no PASID capability} */
    int pasidBits();

    /**
     * {@return how many physical IDs (stream IDs) the device emits DMA with: 1 for PCI, several
     * for some platform devices; a vDEVICE gives each its own virtual ID}
     */
    default int physicalIdCount() {
        return 1;
    }

    /**
     * {@return whether the IOMMU can force this device's DMA to be cache-coherent (no-snoop blocked),
     * the kernel's enforce_cache_coherency; the mock always can}
     */
    default boolean enforcesCacheCoherency() {
        return true;
    }

    /** {@return whether the device can use ATS (a device-side IOTLB); the mock and plain devices cannot} */
    default boolean atsCapable() {
        return false;
    }
}
