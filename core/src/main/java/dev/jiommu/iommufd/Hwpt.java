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

    /** The fault queue this HWPT's I/O page faults go to (FAULT_ID_VALID), or null. Guarded by the context lock. */
    FaultQueue fault;

    /** Routes faults to {@code queue}, holding a reference on it. */
    void faultQueue(FaultQueue queue) {
        queue.get();
        fault = queue;
    }

    /** Drops the fault queue reference (destroy). */
    void releaseFault() {
        if (fault != null) {
            fault.put();
            fault = null;
        }
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
