package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.IommuDriver;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** enforce_cache_coherency (iommufd-uapi.md §3.4, §7): a device that cannot enforce it never joins a domain that does. */
class CacheCoherencyTest extends IommufdFixture {
    @Test
    void aNonCoherentDeviceGetsItsOwnAutoDomainAndDmaCcReportsIt() {
        int ioas = testIoctlIoasAlloc();
        ctx().vfioIoas(Iommufd.VFIO_IOAS_SET, ioas);
        IommufdSelftest.MockDomain coherent = testCmdMockDomain(ioas);
        assertThat(ctx().vfio().checkExtension(VfioContainer.DMA_CC_IOMMU)).isEqualTo(1);

        MockDevice plain = mock().createDevice(0, 1, false);
        int dev = ctx().bindDevice(plain);
        assertErrno(Errno.EINVAL, () -> ctx().attachDevice(dev, IommuDriver.NO_PASID, coherent.hwptId()));
        int own = ctx().attachDevice(dev, IommuDriver.NO_PASID, ioas);
        assertThat(own).as("the coherent auto domain is skipped, a new one made").isNotEqualTo(coherent.hwptId());
        assertThat(ctx().vfio().checkExtension(VfioContainer.DMA_CC_IOMMU)).isZero();

        ctx().unbindDevice(dev);
        assertThat(ctx().vfio().checkExtension(VfioContainer.DMA_CC_IOMMU)).isEqualTo(1);
    }
}
