package dev.jiommu.driver.mock;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.ReservedRegion;
import dev.jiommu.iommu.SelftestDeviceCaches;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.WalkResult;

import java.util.Arrays;
import java.util.List;

/**
 * A device on the mock bus: no reserved regions, dirty tracking unless made with NO_DIRTY, 20 PASID
 * bits when made with PASID. It can also issue DMA, translated through whatever domain its RID is
 * attached to, so tests can check that a device reaches exactly what is mapped for it.
 */
public final class MockDevice implements IommuDevice, SelftestDeviceCaches {
    /** {@code MOCK_DEV_CACHE_NUM}. */
    static final int CACHE_SLOTS = 4;
    /** {@code IOMMU_TEST_DEV_CACHE_DEFAULT}. */
    static final int CACHE_DEFAULT = 0xbaddad;

    private final MockIommuDriver driver;
    private final int number;
    private final String name;
    private final int flags;
    /** Guarded by this. */
    private final int[] caches = {CACHE_DEFAULT, CACHE_DEFAULT, CACHE_DEFAULT, CACHE_DEFAULT};

    private final int streamIds;
    private final boolean coherencyEnforceable;

    MockDevice(MockIommuDriver driver, int number, int flags, int streamIds, boolean coherencyEnforceable) {
        this.driver = driver;
        this.number = number;
        this.name = "iommufd_mock" + number;
        this.flags = flags;
        this.streamIds = streamIds;
        this.coherencyEnforceable = coherencyEnforceable;
    }

    @Override
    public boolean enforcesCacheCoherency() {
        return coherencyEnforceable;
    }

    @Override
    public int physicalIdCount() {
        return streamIds;
    }

    /** {@return N of iommufd_mockN: the order of creation on this mock bus} */
    public int number() {
        return number;
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public List<ReservedRegion> reservedRegions() {
        return List.of();
    }

    @Override
    public boolean dirtyTrackingCapable() {
        return (flags & SelftestDevices.NO_DIRTY) == 0;
    }

    @Override
    public int pasidBits() {
        return (flags & SelftestDevices.PASID) != 0 ? MockIommuDriver.PASID_BITS : 0;
    }

    /**
     * Translates a DMA of this device's RID as the mock hardware would.
     *
     * @return the physical address, or -1 when the device is blocked or the IOVA faults
     */
    public long translate(long iova, int access) {
        IommuDomain domain = driver.attached(this, IommuDriver.NO_PASID);
        if (!(domain instanceof MockPagingDomain paging)) {
            return -1;
        }
        WalkResult result = new WalkResult();
        driver.walker().walk(paging.format(), paging.rootAddress(), iova, access,
                paging.dirtyTracking() ? PageTableWalker.UPDATE_DIRTY : 0, result);
        return result.ok() ? result.outputAddress() : -1;
    }

    @Override
    public synchronized int cache(int id) {
        if (id < 0 || id >= CACHE_SLOTS) {
            throw ErrnoException.of(Errno.EINVAL, "mock device cache slot %d: only 0 to %d", id, CACHE_SLOTS - 1);
        }
        return caches[id];
    }

    /** Clears cache slot {@code id}, or every slot for -1 (a vIOMMU invalidation). */
    synchronized void clearCache(int id) {
        if (id < 0) {
            Arrays.fill(caches, 0);
        } else {
            caches[id] = 0;
        }
    }

    /** {@return whether a read DMA to {@code iova} would succeed} */
    public boolean canRead(long iova) {
        return translate(iova, Access.READ) >= 0;
    }

    @Override
    public String toString() {
        return name;
    }
}
