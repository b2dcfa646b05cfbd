package dev.jiommu.iommu;

/**
 * An IOVA range a device cannot use for DMA (an MSI window, a firmware region), inclusive {@code last}.
 */
public record ReservedRegion(long start, long last, String why) {
    public ReservedRegion {
        if (Long.compareUnsigned(start, last) > 0) {
            throw new IllegalArgumentException(String.format("reserved region 0x%x..0x%x is empty", start, last));
        }
    }
}
