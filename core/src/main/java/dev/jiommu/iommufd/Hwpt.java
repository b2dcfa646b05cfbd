package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDomain;

/**
 * What a device (or one of its PASIDs) can be attached to: a hardware page table, paging or
 * nested. Holds the domain the driver programs and whether PASIDs may use it.
 */
abstract class Hwpt extends IommufdObject {
    /** Allocated with IOMMU_HWPT_ALLOC_PASID: usable for PASID attachments (iommufd-uapi.md §3.8). */
    final boolean pasidCompatible;

    Hwpt(ObjectType type, boolean pasidCompatible) {
        super(type);
        this.pasidCompatible = pasidCompatible;
    }

    /** {@return the domain the driver attaches devices to} */
    abstract IommuDomain domain();

    /** {@return the IOAS whose reserved list takes an attached device's reserved regions} */
    abstract Ioas ioas();

    /** {@return whether this HWPT goes away with its last device (auto domains)} */
    boolean auto() {
        return false;
    }
}
