package dev.jiommu.iommu;

/** What the selftest's MD_CHECK_IOTLB reads of a mock nested domain: its IOTLB slots. */
public interface SelftestNestedDomain {
    /** {@return the value in IOTLB slot {@code id}} @throws dev.jiommu.errno.ErrnoException EINVAL past the last slot */
    int iotlb(int id);
}
