package dev.jiommu.iommu;

/**
 * A translation context a device can be attached to (the kernel's {@code iommu_domain}). The paging
 * kind is {@link IommuPagingDomain}; nested and blocking kinds arrive with later issues.
 */
public interface IommuDomain {
    /** {@return the driver that made this domain} */
    IommuDriver driver();

    /** Releases the domain's hardware state; no device may be attached any more. */
    void free();
}
