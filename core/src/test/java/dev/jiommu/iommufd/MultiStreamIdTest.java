package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.IommuDriver;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A vDEVICE for a device with several stream IDs (beyond upstream, seed 003): one virtual ID per
 * physical ID, each reaching the same device; the single-ID call keeps working for PCI devices.
 */
class MultiStreamIdTest extends IommufdFixture {
    private static final int VIOMMU_TYPE = 0xdeadbeef;

    private int ioas;
    private int viommu;
    private int platformDev;

    @BeforeEach
    void viommuAndAPlatformDeviceWithThreeStreamIds() {
        ioas = testIoctlIoasAlloc();
        MockDevice platform = mock().createDevice(0, 3);
        platformDev = ctx().bindDevice(platform);
        assertThat(ctx().attachDevice(platformDev, IommuDriver.NO_PASID, ioas)).isPositive();
        int parent = ctx().hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, platformDev, ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        viommu = ctx().viommuAlloc(0, VIOMMU_TYPE, platformDev, parent, null).viommuId();
    }

    @Test
    void eachVirtualIdReachesTheDeviceAndNoneIsSharedWithAnother() {
        assertErrno(Errno.EINVAL, () -> ctx().vdeviceAlloc(viommu, platformDev, 0x10));
        assertErrno(Errno.EEXIST, () -> ctx().vdeviceAlloc(viommu, platformDev, new long[] {0x10, 0x11, 0x10}));
        int vdev = ctx().vdeviceAlloc(viommu, platformDev, new long[] {0x10, 0x11, 0x12});
        IommufdSelftest.MockDomain pci = testCmdMockDomain(ioas);
        assertErrno(Errno.EEXIST, () -> ctx().vdeviceAlloc(viommu, pci.idevId(), 0x11));
        ctx().vdeviceAlloc(viommu, pci.idevId(), 0x20);

        for (int cache = 0; cache < 3; cache++) {
            long virtId = 0x10 + cache;
            assertThat(ctx().hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry((int) virtId, cache))).isEqualTo(1);
            test.devCheckCache(platformDev, cache, 0);
        }
        test.devCheckCache(platformDev, 3, 0xbaddad);
        test.devCheckCache(pci.idevId(), 0, 0xbaddad);
        ctx().destroy(vdev);
        assertErrno(Errno.EINVAL, () -> ctx().hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry(0x11, 0)));
    }

    @Test
    void unbindingLeavesATombstoneAndCloseUnbindsTheRest() {
        int vdev = ctx().vdeviceAlloc(viommu, platformDev, new long[] {1, 2, 3});
        assertErrno(Errno.EBUSY, () -> ctx().destroy(platformDev));
        ctx().unbindDevice(platformDev);
        assertErrno(Errno.ENOENT, () -> ctx().destroy(vdev));
        int rebound = ctx().bindDevice(mock().createDevice(0, 2));
        ctx().attachDevice(rebound, IommuDriver.NO_PASID, ioas);
        ctx().vdeviceAlloc(viommu, rebound, new long[] {1, 2});
    }

    private static byte[] entry(int vdevId, int cacheId) {
        return ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(vdevId).putInt(cacheId).array();
    }
}
