package dev.jiommu.hw;

/**
 * What an IOMMU sends to a PCIe endpoint: page-group responses to its page requests (PRI), and,
 * for an endpoint with a device-TLB (ATS), invalidations and the lookups and fills of that TLB,
 * which the IOMMU runs under its own lock so that an invalidation and a DMA through the device-TLB
 * never interleave.
 */
public interface DeviceEndpoint {
    /** The PASID argument of {@link #atcInvalidate} meaning every PASID. */
    int ALL_PASIDS = -2;

    /** A page-group response: {@code code} 0 success, 1 invalid request, 0xf failure. */
    void pageResponse(int pasid, int prgIndex, int code);

    /** Drops device-TLB entries of {@code pasid} ({@link Translator#NO_PASID}, or {@link #ALL_PASIDS}) in [first, last]. */
    default void atcInvalidate(int pasid, long first, long last) {
    }

    /** {@return the physical address the device-TLB holds for {@code iova} with {@code access} allowed, or -1} */
    default long atcLookup(int pasid, long iova, int access) {
        return -1;
    }

    /** Caches a translation-request completion: the 4 KiB page at {@code iovaPage} is {@code paPage} with PERM_* {@code perms}. */
    default void atcFill(int pasid, long iovaPage, long paPage, int perms) {
    }
}
