package dev.jiommu.driver.vtd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.PagingDomainFlags;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A VT-d paging domain: a second-stage table (legacy or scalable PGTT 2, the only kind that can be
 * a nest parent or track dirty pages), or a first-stage table (scalable PGTT 1), with its own
 * domain id. Unmaps end with the IOTLB and device-TLB invalidations its attachments need.
 */
final class VtdPagingDomain implements IommuPagingDomain {
    private final VtdDriver driver;
    private final PageTable table;
    private final int flags;
    final boolean firstStage;
    final int did;
    /** The AW field for PASID and context entries (second stage): levels − 2. */
    final int aw;
    private final long apertureLast;
    volatile boolean dirtyTracking;
    /** Where the domain is attached. Guarded by the driver. */
    final Set<VtdDriver.Attachment> attachments = new LinkedHashSet<>();
    /** Nested domains on this parent. Guarded by the driver. */
    final List<VtdNestedDomain> children = new ArrayList<>();

    VtdPagingDomain(VtdDriver driver, PhysicalMemory memory, int flags, boolean firstStage, int levels, int addressBits, int did) {
        this.driver = driver;
        this.flags = flags;
        this.firstStage = firstStage;
        this.did = did;
        PageTableFormat format = firstStage ? new X86_64(levels, true) : new VtdSecondStage(levels);
        this.table = new PageTable(format, memory, driver.pageSizes(firstStage));
        this.aw = levels - 2;
        // A first-stage table translates the lower canonical half only.
        this.apertureLast = (1L << (firstStage ? Math.min(addressBits, 9 * levels + 12) - 1 : addressBits)) - 1;
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    long rootAddress() {
        return table.rootAddress();
    }

    @Override
    public long pageSizes() {
        return table.pageSizes();
    }

    @Override
    public long apertureStart() {
        return 0;
    }

    @Override
    public long apertureLast() {
        return apertureLast;
    }

    @Override
    public int flags() {
        return flags;
    }

    boolean nestParent() {
        return (flags & PagingDomainFlags.NEST_PARENT) != 0;
    }

    @Override
    public void map(long iova, long pa, long lengthBytes, int prot) {
        if (Long.compareUnsigned(iova + lengthBytes - 1, apertureLast) > 0 || Long.compareUnsigned(iova + lengthBytes - 1, iova) < 0) {
            throw ErrnoException.of(Errno.EINVAL, "vt-d map iova=0x%x lengthBytes=0x%x: beyond the aperture 0x%x", iova, lengthBytes, apertureLast);
        }
        if (nestParent() && (prot & Prot.WRITE) == 0) {
            // ERRATA_772415_SPR17, which GET_HW_INFO reports: no read-only mappings in a nest parent.
            throw ErrnoException.of(Errno.EINVAL, "vt-d map iova=0x%x: read-only mapping in a nest parent (ERRATA_772415_SPR17)", iova);
        }
        table.map(iova, pa, lengthBytes, prot);
        driver.flushAfterMap(this, iova, lengthBytes);
    }

    @Override
    public long unmap(long iova, long lengthBytes) {
        long unmapped = table.unmap(iova, lengthBytes);
        if (unmapped > 0) {
            driver.flushRange(this, iova, unmapped);
        }
        return unmapped;
    }

    @Override
    public long iovaToPhys(long iova) {
        return table.iovaToPhys(iova);
    }

    @Override
    public void setDirtyTracking(boolean enabled) {
        driver.setDirtyTracking(this, enabled);
    }

    @Override
    public void readAndClearDirty(long iova, long lengthBytes, DirtyBitmap bitmap, boolean noClear) {
        table.readAndClearDirty(iova, lengthBytes, bitmap, noClear);
        if (!noClear) {
            // Cached translations would let later writes skip setting D again.
            driver.flushRange(this, iova, lengthBytes);
        }
    }

    @Override
    public void free() {
        driver.freeDomain(this);
        table.destroy();
    }

    int tablePages() {
        return table.tablePages();
    }

    @Override
    public String toString() {
        return String.format("vtd-%s-domain[did=%d]", firstStage ? "fs" : "ss", did);
    }
}
