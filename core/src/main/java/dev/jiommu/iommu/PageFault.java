package dev.jiommu.iommu;

/**
 * One recoverable I/O page fault a device raised (a PCIe page request), as a driver reports it to
 * the core: the PASID ({@link IommuDriver#NO_PASID} without one), the page-request group index,
 * the permissions asked ({@code IOMMU_PGFAULT_PERM_*} bits) and the faulting address.
 *
 * @param last whether this is the last request of its group (the one that needs a response)
 */
public record PageFault(int pasid, int grpid, int perm, long addr, boolean last) {
    public static final int PERM_READ = 1;
    public static final int PERM_WRITE = 1 << 1;
    public static final int PERM_EXEC = 1 << 2;
    public static final int PERM_PRIV = 1 << 3;
}
