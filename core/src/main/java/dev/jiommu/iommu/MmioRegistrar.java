package dev.jiommu.iommu;

import java.lang.foreign.MemorySegment;

/**
 * Where a driver registers MMIO memory a user may mmap through the iommufd (a vIOMMU's register
 * pages); the core picks the mmap offset, as the kernel's iommufd_viommu_alloc_mmap does.
 */
@FunctionalInterface
public interface MmioRegistrar {
    /** {@return the mmap offset under which the user maps exactly {@code window}} */
    long register(MemorySegment window);
}
