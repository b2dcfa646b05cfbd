package dev.jiommu.iommu;

import java.util.List;

/**
 * Where a driver delivers a device's page-request groups (the kernel's iommu_report_device_fault):
 * the core hands each bound device one. Called without driver locks held; the core answers every
 * group through {@link IommuDriver#pageResponse}, with INVALID when nothing attached can take it.
 */
@FunctionalInterface
public interface IopfSink {
    /** Reports one group: its faults in arrival order, the last one flagged {@link PageFault#last()}. */
    void report(int pasid, List<PageFault> group);
}
