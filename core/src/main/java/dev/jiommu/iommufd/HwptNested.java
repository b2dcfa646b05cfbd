package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.PagingDomainFlags;

/**
 * A nested hardware page table (HWPT_NESTED): a user-owned stage 1 on a nest-parent HWPT_PAGING,
 * allocated on the parent (which it then holds) or through a vIOMMU (which it then holds).
 */
final class HwptNested extends Hwpt {
    final HwptPaging parent;
    /** The vIOMMU it was allocated through (it holds that instead of the parent), or null. */
    final Viommu viommu;
    final IommuNestedDomain domain;

    HwptNested(HwptPaging parent, Viommu viommu, IommuNestedDomain domain) {
        super(ObjectType.HWPT_NESTED, (domain.flags() & PagingDomainFlags.PASID) != 0);
        this.parent = parent;
        this.viommu = viommu;
        this.domain = domain;
    }

    @Override
    IommuDomain domain() {
        return domain;
    }

    @Override
    Ioas ioas() {
        return parent.ioas;
    }

    @Override
    void destroy() {
        releaseFault();
        domain.free();
        if (viommu != null) {
            viommu.put();
        } else {
            parent.put();
        }
    }
}
