package dev.jiommu.hw;

/**
 * A device's memory-mapped register page as software sees it: naturally aligned 32- and 64-bit
 * reads and writes at byte offsets. A driver programs an IOMMU only through this (and physical
 * memory), so the same driver runs against the host's emulated unit and a guest's virtual one.
 */
public interface MmioRegisters {
    int read32(int offset);

    long read64(int offset);

    void write32(int offset, int value);

    void write64(int offset, long value);
}
