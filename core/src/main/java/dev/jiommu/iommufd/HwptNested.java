package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.PagingDomainFlags;

/**
 * A nested hardware page table (HWPT_NESTED): a user-owned stage 1 on a nest-parent HWPT_PAGING,
 * which it holds a reference on.
 */
final class HwptNested extends Hwpt {
    final HwptPaging parent;
    final IommuNestedDomain domain;

    HwptNested(HwptPaging parent, IommuNestedDomain domain) {
        super(ObjectType.HWPT_NESTED, (domain.flags() & PagingDomainFlags.PASID) != 0);
        this.parent = parent;
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
        domain.free();
        parent.put();
    }
}
