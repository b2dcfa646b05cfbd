package dev.jiommu.hw;

/**
 * The seam between devices and an IOMMU (DESIGN.md): a request is translated and performed under
 * the IOMMU's lock, so an unmap followed by its invalidation can never race a DMA that already
 * translated (a use-after-unmap is impossible by construction).
 */
public interface Translator {
    /** The PASID argument of a request without PASID. */
    int NO_PASID = -1;
    /** The status of a request that completed. */
    int OK = 0;

    /**
     * Translates [iova, iova + lengthBytes) for {@code requesterId} (and {@code pasid}) and runs
     * {@code op} on each translated piece, in order, under the unit's lock.
     *
     * @param access {@link dev.jiommu.pt.Access} bits
     * @return {@link #OK}, or the vendor's fault code of the first page that failed (the pieces
     *         before it were performed, as a real DMA engine would have)
     */
    int dma(int requesterId, int pasid, long iova, long lengthBytes, int access, DmaOp op);
}
