package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** vIOMMU, vDEVICE, nested HWPTs through a vIOMMU, its invalidation, MMIO windows and tombstones, on the mock. */
class ViommuTest extends IommufdFixture {
    private static final int TYPE_SELFTEST = 0xdeadbeef;
    private static final int CACHE_DEFAULT = 0xbaddad;

    private int ioas;
    private IommufdSelftest.MockDomain md;
    private int parent;

    @BeforeEach
    void nestParent() {
        ioas = testIoctlIoasAlloc();
        md = testCmdMockDomain(ioas);
        parent = fd.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
    }

    @Test
    void viommuAllocChecksTypeParentAndEchoesItsPayloadWithAMappableWindow() {
        assertErrno(Errno.EOPNOTSUPP, () -> fd.viommuAlloc(0, 0, md.idevId(), parent, null));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.viommuAlloc(1, TYPE_SELFTEST, md.idevId(), parent, null));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.viommuAlloc(0, 7, md.idevId(), parent, null));
        assertErrno(Errno.ENOENT, () -> fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), ioas, null));
        assertErrno(Errno.EINVAL, () -> fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), md.hwptId(), null));
        assertErrno(Errno.EINVAL, () -> fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, new byte[4]));

        byte[] in = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putInt(0xcafe).array();
        Iommufd.ViommuAlloc viommu = fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, in);
        ByteBuffer out = ByteBuffer.wrap(viommu.outData()).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(out.getInt(4)).isEqualTo(0xcafe);
        long offset = out.getLong(8);
        long length = out.getLong(16);
        assertThat(length).isEqualTo(2 * PAGE_SIZE);
        assertErrno(Errno.ENXIO, () -> fd.mmap(offset, PAGE_SIZE));
        try (Iommufd.MmioMapping window = fd.mmap(offset, length)) {
            assertThat(window.memory().get(ValueLayout.JAVA_INT_UNALIGNED, 0)).isEqualTo(0xcafe);
            assertErrno(Errno.EBUSY, () -> fd.destroy(viommu.viommuId()));
        }
        assertErrno(Errno.EBUSY, () -> fd.destroy(parent));
        fd.destroy(viommu.viommuId());
        assertErrno(Errno.ENXIO, () -> fd.mmap(offset, length));
    }

    @Test
    void vdevicesAreUniquePerDeviceAndPerVirtualId() {
        int viommu = fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, null).viommuId();
        IommufdSelftest.MockDomain other = testCmdMockDomain(ioas);
        int vdev = fd.vdeviceAlloc(viommu, md.idevId(), 0x99);
        assertErrno(Errno.EEXIST, () -> fd.vdeviceAlloc(viommu, md.idevId(), 0x98));
        assertErrno(Errno.EEXIST, () -> fd.vdeviceAlloc(viommu, other.idevId(), 0x99));
        if (!ON_KERNEL) { // several IDs per vDEVICE are ours alone (docs/vdevice-multi-id.md)
            assertErrno(Errno.EINVAL, () -> fd.vdeviceAlloc(viommu, other.idevId(), new long[] {1, 2}));
        }
        assertErrno(Errno.ENOENT, () -> fd.vdeviceAlloc(parent, other.idevId(), 1));
        assertErrno(Errno.EBUSY, () -> fd.destroy(viommu));
        fd.destroy(vdev);
        fd.destroy(viommu);
    }

    @Test
    void nestedThroughAViommuNeedsAVdeviceToAttach() {
        int viommu = fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, null).viommuId();
        int nested = fd.hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0);
        assertErrno(Errno.ENOENT, () -> test.mockDomainReplace(md.stdevId(), nested));
        fd.vdeviceAlloc(viommu, md.idevId(), 0x42);
        assertThat(test.mockDomainReplace(md.stdevId(), nested)).isEqualTo(nested);
        assertErrno(Errno.EBUSY, () -> fd.destroy(viommu));
    }

    @Test
    void viommuInvalidationClearsTheNamedDevicesCacheSlots() {
        int viommu = fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, null).viommuId();
        fd.vdeviceAlloc(viommu, md.idevId(), 0x42);
        assertThat(fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 0, new byte[0])).isZero();
        assertThat(fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry(0, 0x42, 2))).isEqualTo(1);
        test.devCheckCache(md.idevId(), 2, 0);
        test.devCheckCache(md.idevId(), 1, CACHE_DEFAULT);
        assertThatThrownBy(() -> fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 2, concat(entry(0, 0x42, 1), entry(0, 0x43, 0))))
                .isInstanceOfSatisfying(IommufdException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                    assertThat(e.progress()).isEqualTo(1);
                });
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry(0, 0x42, 4)));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry(2, 0x42, 0)));
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(viommu, 0xdadbeef, 12, 0, new byte[0]));
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(viommu, 0xdeadbeef, 13, 1, new byte[13]));
        fd.hwptInvalidate(viommu, 0xdeadbeef, 12, 1, entry(1, 0x42, 0));
        for (int slot = 0; slot < 4; slot++) {
            test.devCheckCache(md.idevId(), slot, 0);
        }
    }

    @Test
    void unbindingADeviceFirstLeavesItsVdeviceIdAsATombstone() {
        int viommu = fd.viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, null).viommuId();
        IommufdSelftest.MockDomain other = testCmdMockDomain(ioas);
        int vdev = fd.vdeviceAlloc(viommu, other.idevId(), 7);
        fd.destroy(other.stdevId());
        assertErrno(Errno.ENOENT, () -> fd.destroy(vdev));
        int next = testIoctlIoasAlloc();
        assertThat(next).as("the tombstone's ID is not reused").isNotEqualTo(vdev);
        fd.destroy(viommu);
    }

    private static byte[] entry(int flags, int vdevId, int cacheId) {
        return ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(flags).putInt(vdevId).putInt(cacheId).array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        return ByteBuffer.allocate(a.length + b.length).put(a).put(b).array();
    }
}
