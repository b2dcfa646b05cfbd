package dev.jiommu.driver.mock;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuHwQueue;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.IommuViommu;
import dev.jiommu.iommu.InvalidationBatch;
import dev.jiommu.iommu.InvalidationFailure;
import dev.jiommu.iommu.PagingDomainFlags;

import java.util.function.LongFunction;

/**
 * The mock vIOMMU (type 0xdeadbeef): echoes its payload, exposes two MMIO pages holding the
 * caller's {@code in_data}, allocates mock nested domains, and clears mock device cache slots on
 * the guest's invalidation entries (iommufd-uapi.md §8.3).
 */
final class MockViommu implements IommuViommu {
    /** {@code IOMMU_VIOMMU_TYPE_SELFTEST}. */
    static final int TYPE_SELFTEST = 0xdeadbeef;
    /** {@code IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST}. */
    static final int INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
    /** sizeof(struct iommu_viommu_invalidate_selftest): {u32 flags; u32 vdev_id; u32 cache_id;}. */
    static final int INVALIDATE_ENTRY_BYTES = 12;

    private final MockIommuDriver driver;
    private final IommuPagingDomain parent;
    private final byte[] outData;

    MockViommu(MockIommuDriver driver, IommuPagingDomain parent, byte[] outData) {
        this.driver = driver;
        this.parent = parent;
        this.outData = outData;
    }

    @Override
    public int type() {
        return TYPE_SELFTEST;
    }

    @Override
    public IommuPagingDomain parent() {
        return parent;
    }

    @Override
    public byte[] outData() {
        return outData.clone();
    }

    @Override
    public IommuNestedDomain allocNestedDomain(IommuDevice device, int flags, DriverData data) {
        if ((flags & ~PagingDomainFlags.PASID) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock vIOMMU nested domain: flags 0x%x", flags);
        }
        if (data == null || data.type() != MockIommuDriver.HWPT_DATA_SELFTEST) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock vIOMMU nested domain: needs an IOMMU_HWPT_DATA_SELFTEST payload");
        }
        if (data.bytes().length < 4 || data.bytes().length > 8) {
            throw ErrnoException.of(Errno.EINVAL, "mock vIOMMU nested domain: iommu_hwpt_selftest of %d bytes (4 to 8)", data.bytes().length);
        }
        return new MockNestedDomain(driver, parent, flags, data.u32(0), this);
    }

    @Override
    public void vdeviceInit(IommuDevice device, long[] virtIds) {
    }

    @Override
    public void vdeviceDestroy(IommuDevice device) {
    }

    @Override
    public int invalidate(InvalidationBatch batch, LongFunction<IommuDevice> devices) {
        if (batch.dataType() != INVALIDATE_DATA_SELFTEST) {
            throw new InvalidationFailure(Errno.EINVAL, 0, String.format("mock vIOMMU invalidate: data type 0x%x", batch.dataType()));
        }
        if (batch.entryNum() > 0 && batch.entryLen() != INVALIDATE_ENTRY_BYTES) {
            throw new InvalidationFailure(Errno.EINVAL, 0, "mock vIOMMU invalidate: entry_len " + batch.entryLen());
        }
        for (int i = 0; i < batch.entryNum(); i++) {
            int flags = batch.u32(i, 0);
            long vdevId = Integer.toUnsignedLong(batch.u32(i, 4));
            int cacheId = batch.u32(i, 8);
            if ((flags & ~MockNestedDomain.INVALIDATE_FLAG_ALL) != 0) {
                throw new InvalidationFailure(Errno.EOPNOTSUPP, i, String.format("mock vIOMMU invalidate: flags 0x%x", flags));
            }
            if (cacheId < 0 || cacheId >= MockDevice.CACHE_SLOTS) {
                throw new InvalidationFailure(Errno.EINVAL, i, "mock vIOMMU invalidate: cache_id " + Integer.toUnsignedString(cacheId));
            }
            if (!(devices.apply(vdevId) instanceof MockDevice device)) {
                throw new InvalidationFailure(Errno.EINVAL, i, "mock vIOMMU invalidate: no vDEVICE with virt_id " + vdevId);
            }
            device.clearCache((flags & MockNestedDomain.INVALIDATE_FLAG_ALL) != 0 ? -1 : cacheId);
        }
        return batch.entryNum();
    }

    /** {@code IOMMU_HW_QUEUE_TYPE_SELFTEST}. */
    static final int HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
    /** {@code IOMMU_TEST_HW_QUEUE_MAX}. */
    static final int HW_QUEUE_MAX = 2;

    /** Live queues by index. Guarded by this. */
    private final IommuHwQueue[] queues = new IommuHwQueue[HW_QUEUE_MAX];

    @Override
    public synchronized IommuHwQueue hwQueueAlloc(int type, int index, long parentIova, long pa, long lengthBytes) {
        if (type != HW_QUEUE_TYPE_SELFTEST) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock HW queue: type 0x%x", type);
        }
        if (index < 0 || index >= HW_QUEUE_MAX) {
            throw ErrnoException.of(Errno.EINVAL, "mock HW queue: index %d (0 to %d)", index, HW_QUEUE_MAX - 1);
        }
        if (queues[index] != null) {
            throw ErrnoException.of(Errno.EEXIST, "mock HW queue: index %d is in use", index);
        }
        if (index > 0 && queues[index - 1] == null) {
            throw ErrnoException.of(Errno.EIO, "mock HW queue: index %d before index %d", index, index - 1);
        }
        // The driver re-checks what the core computed against the stage 2 itself.
        if (parent.iovaToPhys(parentIova) != pa) {
            throw ErrnoException.of(Errno.EFAULT, "mock HW queue: iova 0x%x does not translate to 0x%x", parentIova, pa);
        }
        IommuHwQueue queue = new IommuHwQueue() {
            @Override
            public int dependsOn() {
                return index - 1;
            }

            @Override
            public void free() {
                synchronized (MockViommu.this) {
                    queues[index] = null;
                }
            }
        };
        queues[index] = queue;
        return queue;
    }

    @Override
    public void free() {
    }
}
