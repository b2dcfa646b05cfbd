package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Nested HWPTs on a nest parent and their cache invalidation, on the mock (iommufd-uapi.md §2.11, §2.15). */
class HwptNestedTest extends IommufdFixture {
    private static final int IOTLB_DEFAULT = 0xbadbeef;
    private static final int INVALIDATE_SELFTEST = 0xdeadbeef;
    private static final int FLAG_ALL = 1;

    private int ioas;
    private IommufdSelftest.MockDomain md;
    private int parent;

    @BeforeEach
    void nestParent() {
        ioas = testIoctlIoasAlloc();
        md = testCmdMockDomain(ioas);
        parent = fd.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
    }

    private int nested(int flags) {
        return fd.hwptAlloc(flags, md.idevId(), parent, MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(IOTLB_DEFAULT), 0);
    }

    @Test
    void nestedNeedsAManualNestParentAndAPayload() {
        int plain = fd.hwptAlloc(0, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, md.idevId(), plain, MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(0), 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, md.idevId(), md.hwptId(), MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(0), 0));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(0, md.idevId(), parent, Iommufd.HWPT_DATA_NONE, null, 0));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), parent,
                MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(0), 0));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(0, md.idevId(), parent, 0x77, selftestData(0), 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, md.idevId(), parent, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[2], 0));
        int nested = nested(0);
        for (int slot = 0; slot < 4; slot++) {
            test.mdCheckIotlb(nested, slot, IOTLB_DEFAULT);
        }
        assertErrno(Errno.EBUSY, () -> fd.destroy(parent));
        fd.destroy(nested);
        fd.destroy(parent);
    }

    @Test
    void aDeviceAttachedToANestedHwptKeepsItAlive() {
        int nested = nested(0);
        assertThat(test.mockDomainReplace(md.stdevId(), nested)).isEqualTo(nested);
        assertErrno(Errno.EBUSY, () -> fd.destroy(nested));
        assertErrno(Errno.EBUSY, () -> fd.destroy(parent));
        test.mockDomainReplace(md.stdevId(), ioas);
        fd.destroy(nested);
    }

    @Test
    void invalidationClearsSlotsAndReportsProgressOnABadEntry() {
        int nested = nested(0);
        assertThat(fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, 0, new byte[0])).isZero();
        assertThat(fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, 1, entries(0, 1))).isEqualTo(1);
        test.mdCheckIotlb(nested, 1, 0);
        test.mdCheckIotlb(nested, 2, IOTLB_DEFAULT);

        assertThatThrownBy(() -> fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, 3, entries(0, 2, 0, 9, 0, 3)))
                .isInstanceOfSatisfying(IommufdException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                    assertThat(e.progress()).isEqualTo(1);
                });
        test.mdCheckIotlb(nested, 2, 0);
        test.mdCheckIotlb(nested, 3, IOTLB_DEFAULT);
        assertThatThrownBy(() -> fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, 2, entries(FLAG_ALL, 0, 4, 0)))
                .isInstanceOfSatisfying(IommufdException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.EOPNOTSUPP);
                    assertThat(e.progress()).isEqualTo(1);
                });
        for (int slot = 0; slot < 4; slot++) {
            test.mdCheckIotlb(nested, slot, 0);
        }
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(nested, 0xdadbeef, 8, 0, new byte[0]));
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 9, 1, new byte[9]));
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(nested, INVALIDATE_SELFTEST, 0, 1, new byte[0]));
        assertErrno(Errno.EINVAL, () -> fd.hwptInvalidate(parent, INVALIDATE_SELFTEST, 8, 0, new byte[0]));
        assertErrno(Errno.ENOENT, () -> fd.hwptInvalidate(999, INVALIDATE_SELFTEST, 8, 0, new byte[0]));
        assertErrno(Errno.EINVAL, () -> test.mdCheckIotlb(nested, 4, 0));
    }

    private static byte[] selftestData(int iotlb) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(iotlb).putInt(0).array();
    }

    /** {@return entries of {flags, iotlb_id} pairs} */
    private static byte[] entries(int... flagsAndIds) {
        ByteBuffer b = ByteBuffer.allocate(flagsAndIds.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : flagsAndIds) {
            b.putInt(v);
        }
        return b.array();
    }
}
