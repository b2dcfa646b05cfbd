package dev.jiommu.iommu;

/**
 * A nested domain (iommufd's HWPT_NESTED): a stage-1 table the user owns, translated through a
 * nest-parent paging domain the kernel owns. The user keeps its caches coherent with
 * {@link #invalidate}.
 */
public interface IommuNestedDomain extends IommuDomain {
    /** {@return the stage-2 (nest parent) under this stage 1} */
    IommuPagingDomain parent();

    /** {@return the vIOMMU this domain was allocated through, or null (allocated on a nest parent)} */
    default IommuViommu viommu() {
        return null;
    }

    /** {@return the {@link PagingDomainFlags} (only PASID applies) it was allocated with} */
    int flags();

    /**
     * Runs a batch of user cache-invalidation entries (HWPT_INVALIDATE), in order, stopping at the
     * first bad one.
     *
     * @return the number of entries handled (all of them)
     * @throws InvalidationFailure for a bad entry, carrying how many entries went before it; an
     *         unsupported {@code dataType} fails even with no entries
     */
    int invalidate(InvalidationBatch batch);
}
