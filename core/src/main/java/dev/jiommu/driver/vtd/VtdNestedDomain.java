package dev.jiommu.driver.vtd;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.InvalidationBatch;
import dev.jiommu.iommu.InvalidationFailure;

import java.util.LinkedHashSet;
import java.util.Set;

/**
 * A VT-d nested domain (IOMMU_HWPT_DATA_VTD_S1): the user's first-stage table at a GPA, translated
 * through the nest parent's second stage (PASID entry PGTT 3), with its own domain id. The user
 * keeps its IOTLB entries coherent with IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entries.
 */
final class VtdNestedDomain implements IommuNestedDomain {
    /** {@code IOMMU_HWPT_DATA_VTD_S1}. */
    static final int DATA_VTD_S1 = 1;
    /** sizeof(struct iommu_hwpt_vtd_s1): flags u64, pgtbl_addr u64, addr_width u32, __reserved u32. */
    static final int S1_BYTES = 24;
    static final long S1_SRE = 1;
    static final long S1_EAFE = 1 << 1;
    static final long S1_WPE = 1 << 2;
    /** {@code IOMMU_HWPT_INVALIDATE_DATA_VTD_S1}. */
    static final int INVALIDATE_DATA_VTD_S1 = 0;
    /** sizeof(struct iommu_hwpt_vtd_s1_invalidate): addr u64, npages u64, flags u32, __reserved u32. */
    static final int INVALIDATE_BYTES = 24;
    static final int INV_FLAGS_LEAF = 1;

    private final VtdDriver driver;
    final VtdPagingDomain parent;
    private final int flags;
    final int did;
    final long s1Flags;
    final long pgtblAddr;
    final int addrWidth;
    /** Guarded by the driver. */
    final Set<VtdDriver.Attachment> attachments = new LinkedHashSet<>();

    VtdNestedDomain(VtdDriver driver, VtdPagingDomain parent, int flags, int did, long s1Flags, long pgtblAddr, int addrWidth) {
        this.driver = driver;
        this.parent = parent;
        this.flags = flags;
        this.did = did;
        this.s1Flags = s1Flags;
        this.pgtblAddr = pgtblAddr;
        this.addrWidth = addrWidth;
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public IommuPagingDomain parent() {
        return parent;
    }

    @Override
    public int flags() {
        return flags;
    }

    @Override
    public int invalidate(InvalidationBatch batch) {
        if (batch.dataType() != INVALIDATE_DATA_VTD_S1) {
            throw new InvalidationFailure(Errno.EINVAL, 0, String.format("vt-d invalidate: data type %d is not VTD_S1", batch.dataType()));
        }
        if (batch.entryNum() > 0 && batch.entryLen() < INVALIDATE_BYTES) {
            throw new InvalidationFailure(Errno.EINVAL, 0, "vt-d invalidate: entry_len " + batch.entryLen() + " below " + INVALIDATE_BYTES);
        }
        for (int i = 0; i < batch.entryNum(); i++) {
            for (int off = INVALIDATE_BYTES; off < batch.entryLen(); off += 4) {
                if (batch.u32(i, off) != 0) {
                    throw new InvalidationFailure(Errno.E2BIG, i, "vt-d invalidate: non-zero bytes past the known entry");
                }
            }
            long addr = u64(batch, i, 0);
            long npages = u64(batch, i, 8);
            int entryFlags = batch.u32(i, 16);
            int reserved = batch.u32(i, 20);
            if ((entryFlags & ~INV_FLAGS_LEAF) != 0 || reserved != 0) {
                throw new InvalidationFailure(Errno.EOPNOTSUPP, i, String.format("vt-d invalidate: flags 0x%x reserved 0x%x", entryFlags, reserved));
            }
            if ((addr & 0xfff) != 0 || npages == -1L && addr != 0) {
                throw new InvalidationFailure(Errno.EINVAL, i, String.format("vt-d invalidate: addr 0x%x npages 0x%x", addr, npages));
            }
            if (npages != 0) {
                driver.flushNested(this, addr, npages, (entryFlags & INV_FLAGS_LEAF) != 0);
            }
        }
        return batch.entryNum();
    }

    private static long u64(InvalidationBatch batch, int index, int offset) {
        return (batch.u32(index, offset) & 0xffff_ffffL) | ((long) batch.u32(index, offset + 4) << 32);
    }

    @Override
    public void free() {
        driver.freeNested(this);
    }

    @Override
    public String toString() {
        return String.format("vtd-nested-domain[did=%d s1=0x%x]", did, pgtblAddr);
    }
}
