package dev.jiommu.driver.mock;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.SelftestDomain;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.format.MockFormat;

/**
 * A mock paging domain: the mock page-table format, DEFAULT (every page size from 2 KiB, aperture
 * forced to [16 MiB, 2 GiB − 1]) or HUGE (4 KiB and 1 MiB pages, the table's whole input).
 */
final class MockPagingDomain implements IommuPagingDomain, SelftestDomain {
    private static final long HUGE_PAGE_SIZES = (1L << 12) | (1L << 20);
    /**
     * The kernel's mock starts its AMD v1 table at level 2 (starting_level = 2 in selftest.c), so
     * three levels of a 2 KiB granule: a 38-bit input. Measured on the reference kernel 7.3.4: a
     * HUGE domain's IOAS reports exactly [0, 2^38 − 1].
     */
    private static final int LEVELS = 3;

    private final MockIommuDriver driver;
    private final PageTable table;
    private final int flags;
    private final long apertureStart;
    private final long apertureLast;
    private volatile boolean dirtyTracking;

    MockPagingDomain(MockIommuDriver driver, PhysicalMemory memory, int flags, boolean huge) {
        MockFormat format = new MockFormat(LEVELS);
        this.driver = driver;
        this.flags = flags;
        this.table = huge ? new PageTable(format, memory, HUGE_PAGE_SIZES) : new PageTable(format, memory);
        this.apertureStart = huge ? 0 : MockIommuDriver.APERTURE_START;
        this.apertureLast = huge ? (1L << format.inputBits()) - 1 : MockIommuDriver.APERTURE_LAST;
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public long pageSizes() {
        return table.pageSizes();
    }

    @Override
    public long apertureStart() {
        return apertureStart;
    }

    @Override
    public long apertureLast() {
        return apertureLast;
    }

    @Override
    public int flags() {
        return flags;
    }

    @Override
    public void map(long iova, long pa, long lengthBytes, int prot) {
        if (Long.compareUnsigned(iova, apertureStart) < 0 || Long.compareUnsigned(iova + lengthBytes - 1, apertureLast) > 0) {
            throw ErrnoException.of(Errno.EINVAL, "mock map iova=0x%x lengthBytes=0x%x: outside the aperture [0x%x, 0x%x]",
                    iova, lengthBytes, apertureStart, apertureLast);
        }
        table.map(iova, pa, lengthBytes, prot);
    }

    @Override
    public long unmap(long iova, long lengthBytes) {
        return table.unmap(iova, lengthBytes);
    }

    @Override
    public long iovaToPhys(long iova) {
        return table.iovaToPhys(iova);
    }

    @Override
    public void setDirtyTracking(boolean enabled) {
        dirtyTracking = enabled;
    }

    boolean dirtyTracking() {
        return dirtyTracking;
    }

    @Override
    public void readAndClearDirty(long iova, long lengthBytes, DirtyBitmap bitmap, boolean noClear) {
        table.readAndClearDirty(iova, lengthBytes, bitmap, noClear);
    }

    @Override
    public boolean markDirty(long iova) {
        return table.markDirty(iova);
    }

    @Override
    public void free() {
        table.destroy();
    }

    PageTableFormat format() {
        return table.format();
    }

    long rootAddress() {
        return table.rootAddress();
    }

    /** {@return the number of table pages, for leak checks} */
    int tablePages() {
        return table.tablePages();
    }
}
