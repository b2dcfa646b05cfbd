package dev.jiommu.iommufd;

/**
 * One contiguous IOVA interval made by one MAP, MAP_FILE or COPY: [iova, last] maps bytes
 * [pagesOffset, pagesOffset + length) of its {@link IoptPages}. Guarded by the context lock.
 */
final class IoptArea {
    final long iova;
    final long last;
    final IoptPages pages;
    /** Byte offset of the area's first byte within its pages' range. */
    final long pagesOffset;
    /** {@link dev.jiommu.pt.Prot} READ/WRITE the area grants. */
    final int prot;
    /** Access pin items inside this area. */
    int accessItems;
    /** HW queues that lock this area against unmap. */
    int locks;
    /** Its dma-buf was revoked: the area keeps its IOVA but is in no domain any more. */
    boolean revoked;

    IoptArea(long iova, long last, IoptPages pages, long pagesOffset, int prot) {
        this.iova = iova;
        this.last = last;
        this.pages = pages;
        this.pagesOffset = pagesOffset;
        this.prot = prot;
    }

    long lengthBytes() {
        return last - iova + 1;
    }

    /** {@return the index in {@link #pages} of the page holding the area's first byte} */
    int firstPage() {
        return pages.pageOf(pagesOffset);
    }

    /** {@return the index in {@link #pages} of the page holding the area's last byte} */
    int lastPage() {
        return pages.pageOf(pagesOffset + lengthBytes() - 1);
    }

    /** {@return the pages index holding the byte at {@code iova}} */
    int pageAt(long at) {
        return pages.pageOf(pagesOffset + (at - iova));
    }

    /** {@return the sub-page offset of the byte at {@code iova} in its page} */
    long offsetInPageAt(long at) {
        return pages.offsetInPage(pagesOffset + (at - iova));
    }

    @Override
    public String toString() {
        return String.format("area[0x%x, 0x%x]", iova, last);
    }
}
