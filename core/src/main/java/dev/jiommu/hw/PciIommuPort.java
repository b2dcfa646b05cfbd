package dev.jiommu.hw;

/**
 * What a PCIe endpoint reaches of the IOMMU above it beyond untranslated DMA: translated DMA
 * through its device-TLB (ATS), page requests (PRI), and the registration that lets the IOMMU
 * send it invalidations and page responses.
 */
public interface PciIommuPort extends Translator {
    /** Registers {@code endpoint} as the device at {@code requesterId}. */
    void attachEndpoint(int requesterId, DeviceEndpoint endpoint);

    /**
     * A DMA through {@code endpoint}'s device-TLB: misses are filled by translation requests; a
     * failed translation request is returned (not recorded as a fault), as its completion says.
     */
    int atsDma(int requesterId, int pasid, long iova, long lengthBytes, int access, DeviceEndpoint endpoint, DmaOp op);

    /** Sends a page request message. */
    PageRequestStatus pageRequest(int requesterId, int pasid, long address, boolean read, boolean write, boolean last, int prgIndex);
}
