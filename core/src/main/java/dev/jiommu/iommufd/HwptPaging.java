package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.PagingDomainFlags;

/**
 * A paging hardware page table (HWPT_PAGING): a driver paging domain that mirrors one IOAS.
 * Auto HWPTs are made by attaching a device to an IOAS and go away with their last device.
 */
final class HwptPaging extends Hwpt {
    final Ioas ioas;
    final IommuPagingDomain domain;
    private final boolean auto;
    /**
     * Whether the domain forces cache-coherent DMA: set by the first device that can (the kernel's
     * enforce_cache_coherency), after which a device that cannot may not join. Guarded by the context lock.
     */
    boolean enforceCacheCoherency;
    /** Whether SET_DIRTY_TRACKING enabled tracking. Guarded by the context lock. */
    boolean dirtyTracking;

    HwptPaging(Ioas ioas, IommuPagingDomain domain, boolean auto) {
        super(ObjectType.HWPT_PAGING, (domain.flags() & PagingDomainFlags.PASID) != 0);
        this.ioas = ioas;
        this.domain = domain;
        this.auto = auto;
    }

    @Override
    IommuDomain domain() {
        return domain;
    }

    @Override
    Ioas ioas() {
        return ioas;
    }

    @Override
    boolean auto() {
        return auto;
    }

    @Override
    void destroy() {
        releaseFault();
        ioas.iopt.removeDomain(domain);
        ioas.hwpts.remove(this);
        domain.free();
        ioas.put();
    }
}
