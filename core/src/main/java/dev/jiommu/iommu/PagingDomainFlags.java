package dev.jiommu.iommu;

/**
 * Flags of a paging-domain allocation, with the values of {@code IOMMU_HWPT_ALLOC_*}.
 */
public final class PagingDomainFlags {
    public static final int NEST_PARENT = 1;
    public static final int DIRTY_TRACKING = 1 << 1;
    public static final int FAULT_ID = 1 << 2;
    public static final int PASID = 1 << 3;

    private PagingDomainFlags() {
    }
}
