package dev.jiommu.iommu;

/**
 * What the selftest's test operations may do to a mock paging domain beyond the driver SPI, as the
 * kernel's selftest.c reaches into its own mock: mark an IOPTE dirty as if a device had written.
 * A domain that does not implement it is "not a mock domain" (EINVAL).
 */
public interface SelftestDomain {
    /** Marks dirty the IOPTE that translates {@code iova}; {@return false when nothing maps it} */
    boolean markDirty(long iova);
}
