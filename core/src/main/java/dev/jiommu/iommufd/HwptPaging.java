package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuPagingDomain;

/**
 * A paging hardware page table (HWPT_PAGING): a driver paging domain that mirrors one IOAS.
 * Auto HWPTs are made by attaching a device to an IOAS and go away with their last device.
 */
final class HwptPaging extends IommufdObject {
    final Ioas ioas;
    final IommuPagingDomain domain;
    final boolean auto;
    /** Whether SET_DIRTY_TRACKING enabled tracking. Guarded by the context lock. */
    boolean dirtyTracking;

    HwptPaging(Ioas ioas, IommuPagingDomain domain, boolean auto) {
        super(ObjectType.HWPT_PAGING);
        this.ioas = ioas;
        this.domain = domain;
        this.auto = auto;
    }

    @Override
    void destroy() {
        ioas.iopt.removeDomain(domain);
        ioas.hwpts.remove(this);
        domain.free();
        ioas.put();
    }
}
