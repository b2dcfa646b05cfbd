package dev.jiommu.iommu;

/**
 * A hardware queue a vIOMMU runs in guest memory (iommufd's HW_QUEUE): the IOMMU reads and writes
 * the queue at a physical address the core pinned and locked for it.
 */
public interface IommuHwQueue {
    /** {@return the index of the queue of the same type this one depends on (it may not go first), or -1} */
    int dependsOn();

    void free();
}
