package dev.jiommu.driver.mock;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.InvalidationBatch;
import dev.jiommu.iommu.InvalidationFailure;
import dev.jiommu.iommu.SelftestNestedDomain;

import java.util.Arrays;

/**
 * The mock's nested domain: no stage-1 table, only four IOTLB "slots" the user sets at allocation
 * and clears with invalidation entries, so tests can see which invalidations arrived.
 */
final class MockNestedDomain implements IommuNestedDomain, SelftestNestedDomain {
    /** {@code IOMMU_HWPT_INVALIDATE_DATA_SELFTEST}. */
    static final int INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
    /** {@code IOMMU_TEST_INVALIDATE_FLAG_ALL}. */
    static final int INVALIDATE_FLAG_ALL = 1;
    static final int IOTLB_SLOTS = 4;
    /** sizeof(struct iommu_hwpt_invalidate_selftest): {u32 flags; u32 iotlb_id;}. */
    static final int ENTRY_BYTES = 8;

    private final MockIommuDriver driver;
    private final IommuPagingDomain parent;
    private final int flags;
    private final int[] iotlb = new int[IOTLB_SLOTS];
    private final MockViommu viommu;

    MockNestedDomain(MockIommuDriver driver, IommuPagingDomain parent, int flags, int initialIotlb, MockViommu viommu) {
        this.driver = driver;
        this.parent = parent;
        this.flags = flags;
        this.viommu = viommu;
        Arrays.fill(iotlb, initialIotlb);
    }

    @Override
    public MockViommu viommu() {
        return viommu;
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
    public synchronized int invalidate(InvalidationBatch batch) {
        if (batch.dataType() != INVALIDATE_DATA_SELFTEST) {
            throw new InvalidationFailure(Errno.EINVAL, 0, String.format("mock invalidate: data type 0x%x", batch.dataType()));
        }
        if (batch.entryNum() > 0 && (batch.entryLen() < ENTRY_BYTES || batch.entryLen() > ENTRY_BYTES)) {
            throw new InvalidationFailure(Errno.EINVAL, 0, "mock invalidate: entry_len " + batch.entryLen() + " is not " + ENTRY_BYTES);
        }
        for (int i = 0; i < batch.entryNum(); i++) {
            int entryFlags = batch.u32(i, 0);
            int id = batch.u32(i, 4);
            if ((entryFlags & ~INVALIDATE_FLAG_ALL) != 0) {
                throw new InvalidationFailure(Errno.EOPNOTSUPP, i, String.format("mock invalidate: flags 0x%x", entryFlags));
            }
            if ((entryFlags & INVALIDATE_FLAG_ALL) != 0) {
                Arrays.fill(iotlb, 0);
            } else if (id < 0 || id >= IOTLB_SLOTS) {
                throw new InvalidationFailure(Errno.EINVAL, i, "mock invalidate: iotlb_id " + Integer.toUnsignedString(id));
            } else {
                iotlb[id] = 0;
            }
        }
        return batch.entryNum();
    }

    @Override
    public synchronized int iotlb(int id) {
        if (id < 0 || id >= IOTLB_SLOTS) {
            throw ErrnoException.of(Errno.EINVAL, "mock iotlb slot %d: only 0 to %d", id, IOTLB_SLOTS - 1);
        }
        return iotlb[id];
    }

    @Override
    public void free() {
    }
}
