package dev.jiommu.iommu;

/**
 * What the iommufd core asks of an IOMMU driver (the kernel's {@code iommu_ops}): allocate domains
 * for a device and attach the device to them. Every failure is an
 * {@link dev.jiommu.errno.ErrnoException} with the errno the kernel driver returns; EINVAL from
 * {@link #attach} means "this domain is incompatible with the device", which lets the core try
 * another domain.
 */
public interface IommuDriver {
    /** {@return the driver's name, e.g. "mock" or "intel-iommu"} */
    String name();

    /**
     * GET_HW_INFO for {@code device}: the vendor struct of {@code type}
     * ({@link DriverHwInfo#TYPE_DEFAULT} for the driver's own). A type the driver does not report is
     * EOPNOTSUPP.
     */
    DriverHwInfo hwInfo(IommuDevice device, int type);

    /**
     * Allocates a paging domain suitable for {@code device}.
     *
     * @param flags {@link PagingDomainFlags}; a flag the driver cannot honour is EOPNOTSUPP
     * @param data  driver-specific allocation data (the selftest's page-table type), or null
     */
    IommuPagingDomain allocPagingDomain(IommuDevice device, int flags, DriverData data);

    /**
     * Allocates a nested domain (a user stage 1 described by {@code data}) on the nest parent
     * {@code parent}, for {@code device}. A driver without nesting answers EOPNOTSUPP.
     */
    IommuNestedDomain allocNestedDomain(IommuDevice device, IommuPagingDomain parent, int flags, DriverData data);

    /**
     * Allocates a vIOMMU of {@code type} on the nest parent {@code parent}, behind the physical IOMMU
     * of {@code device}. A driver without vIOMMUs, or not knowing {@code type}, answers EOPNOTSUPP.
     * MMIO pages the user may mmap are registered with {@code mmio}.
     */
    IommuViommu allocViommu(IommuDevice device, IommuPagingDomain parent, int type, DriverData data, MmioRegistrar mmio);

    /**
     * Attaches {@code device}'s requests tagged {@code pasid} ({@link #NO_PASID} for the RID) to
     * {@code domain}, replacing what was attached there without a window of blocked DMA.
     */
    void attach(IommuDevice device, int pasid, IommuDomain domain);

    /** Puts {@code device}'s {@code pasid} back to blocking all DMA. Never fails. */
    void detach(IommuDevice device, int pasid);

    /**
     * {@return whether a nested domain on a device's RID carries the guest's own PASID table (the
     * kernel's {@code user_pasid_table}: SMMUv3, AMD, the selftest mock)}, so that the core sends
     * page requests for PASIDs it has nothing attached at to that nested domain
     */
    default boolean userPasidTable() {
        return false;
    }

    /**
     * Sets (or with null, clears) where {@code device}'s page requests go; the core calls it when it
     * binds and unbinds the device. A driver without page requests ignores it.
     */
    default void faultSink(IommuDevice device, IopfSink sink) {
    }

    /**
     * Answers a page-request group of {@code device} ({@code ops->page_response}): {@code code} 0
     * success (the device retries), 1 invalid. Must not call back into the core.
     */
    default void pageResponse(IommuDevice device, int pasid, int grpid, int code) {
    }

    /** The PASID value that stands for the requester ID itself (requests without a PASID). */
    int NO_PASID = -1;
}
