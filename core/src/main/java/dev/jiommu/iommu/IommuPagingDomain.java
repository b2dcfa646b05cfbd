package dev.jiommu.iommu;

import dev.jiommu.pt.DirtyBitmap;

/**
 * A domain translating through a page table the kernel owns (iommufd's HWPT_PAGING): the IO page
 * table every area of an IOAS is mirrored into.
 *
 * <p>Map and unmap follow the page-table rules of {@link dev.jiommu.pt.PageTable}: whole pages
 * only, overlap is EEXIST, and a failed map leaves nothing behind. Callers serialize mutations.
 */
public interface IommuPagingDomain extends IommuDomain {
    /** {@return the page sizes this domain can map, as a bitmap (bit n = 2^n bytes)} */
    long pageSizes();

    /** {@return the first IOVA the domain translates} */
    long apertureStart();

    /** {@return the last IOVA the domain translates (inclusive)} */
    long apertureLast();

    /** Maps [iova, iova + lengthBytes) to [pa, …) with {@link dev.jiommu.pt.Prot} flags. */
    void map(long iova, long pa, long lengthBytes, int prot);

    /** Unmaps whole pages in [iova, iova + lengthBytes); {@return the bytes unmapped} */
    long unmap(long iova, long lengthBytes);

    /** {@return the physical address {@code iova} translates to, or {@link dev.jiommu.pt.PageTable#NOT_MAPPED}} */
    long iovaToPhys(long iova);

    /** {@return the {@link PagingDomainFlags} it was allocated with} */
    int flags();

    /** Starts or stops hardware dirty tracking for every device attached. */
    void setDirtyTracking(boolean enabled);

    /** Reports (and unless {@code noClear}, clears) dirty pages in the range into {@code bitmap}. */
    void readAndClearDirty(long iova, long lengthBytes, DirtyBitmap bitmap, boolean noClear);
}
