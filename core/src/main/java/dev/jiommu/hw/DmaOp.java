package dev.jiommu.hw;

/**
 * The access a device performs once its address is translated, run by the {@link Translator}
 * under the unit's lock for each physically contiguous piece. A device passes a reusable object,
 * so DMA allocates nothing.
 */
@FunctionalInterface
public interface DmaOp {
    /**
     * @param pa          physical address of this piece
     * @param offsetBytes offset of this piece from the start of the request
     * @param lengthBytes bytes in this piece
     */
    void access(long pa, long offsetBytes, long lengthBytes);
}
