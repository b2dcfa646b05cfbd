package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.pt.DirtyBitmap;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** HWPT_ALLOC of paging HWPTs, GET_HW_INFO and dirty tracking on the mock (iommufd-uapi.md §2.11–2.14). */
class HwptPagingTest extends IommufdFixture {
    private static final int DIRTY = Iommufd.HWPT_ALLOC_DIRTY_TRACKING;

    @Test
    void manualHwptIsNeitherAutoSelectedNorAutoDestroyed() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        int manual = fd.hwptAlloc(0, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        assertThat(manual).isNotEqualTo(md.hwptId());
        IommufdSelftest.MockDomain second = testCmdMockDomain(ioas);
        assertThat(second.hwptId()).as("the auto HWPT is reused, the manual one is not picked").isEqualTo(md.hwptId());
        assertThat(test.mockDomainReplace(second.stdevId(), manual)).isEqualTo(manual);
        assertErrno(Errno.EBUSY, () -> fd.destroy(manual));
        fd.destroy(second.stdevId());
        fd.destroy(manual); // still there after its only device left
        assertErrno(Errno.ENOENT, () -> fd.destroy(manual));
    }

    @Test
    void hwptAllocRefusesBadArgumentsWithTheKernelsErrnos() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        int dev = md.idevId();
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(1 << 9, dev, ioas, Iommufd.HWPT_DATA_NONE, null, 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, dev, ioas, Iommufd.HWPT_DATA_NONE, new byte[8], 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, dev, ioas, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[0], 0));
        assertErrno(Errno.ENOENT, () -> fd.hwptAlloc(0, ioas, ioas, Iommufd.HWPT_DATA_NONE, null, 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, dev, 999, Iommufd.HWPT_DATA_NONE, null, 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, dev, md.stdevId(), Iommufd.HWPT_DATA_NONE, null, 0));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(0, dev, ioas, 0x1234, new byte[8], 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptAlloc(0, dev, ioas, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[9], 0));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(0, dev, ioas, MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(0, 7), 0));
        assertErrno(Errno.ENOENT, () -> fd.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, dev, ioas, Iommufd.HWPT_DATA_NONE, null, ioas));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID | Iommufd.HWPT_ALLOC_NEST_PARENT, dev, ioas,
                Iommufd.HWPT_DATA_NONE, null, 0));
        assertThat(ctx().objectCount()).as("nothing left behind by the refusals").isEqualTo(4);
    }

    @Test
    void hugePagetableTypeLiftsTheApertureAndUses4kAnd1mPages() {
        int ioas = testIoctlIoasAlloc();
        int other = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(other);
        fd.hwptAlloc(0, md.idevId(), ioas, MockIommuDriver.HWPT_DATA_SELFTEST, selftestData(0, MockIommuDriver.PAGETABLE_HUGE), 0);
        Iommufd.IovaRanges ranges = fd.ioasIovaRanges(ioas);
        assertThat(ranges.iovaAlignment()).isEqualTo(PAGE_SIZE);
        assertThat(ranges.ranges()).as("3 levels of 2 KiB, as the reference kernel reports").containsExactly(new IovaRange(0, (1L << 38) - 1));
    }

    @Test
    void hwInfoReportsTheMockStructPasidWidthAndCapabilities() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain plain = testCmdMockDomain(ioas);
        IommufdSelftest.MockDomain pasid = test.mockDomainFlags(ioas, SelftestDevices.PASID | SelftestDevices.NO_DIRTY);
        Iommufd.HwInfo info = fd.getHwInfo(plain.idevId(), 0, 0);
        assertThat(info.dataType()).isEqualTo(MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        ByteBuffer data = ByteBuffer.wrap(info.data()).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(data.getInt(0)).isZero();
        assertThat(data.getInt(4)).isEqualTo(MockIommuDriver.HW_INFO_SELFTEST_REGVAL);
        assertThat(info.maxPasidLog2()).isZero();
        assertThat(info.capabilities()).isEqualTo(Iommufd.HW_CAP_DIRTY_TRACKING | Iommufd.HW_CAP_PCI_ATS_NOT_SUPPORTED);
        Iommufd.HwInfo pasidInfo = fd.getHwInfo(pasid.idevId(), Iommufd.HW_INFO_FLAG_INPUT_TYPE, MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        assertThat(pasidInfo.maxPasidLog2()).isEqualTo(MockIommuDriver.PASID_BITS);
        assertThat(pasidInfo.capabilities() & Iommufd.HW_CAP_DIRTY_TRACKING).isZero();
        assertErrno(Errno.EOPNOTSUPP, () -> fd.getHwInfo(plain.idevId(), Iommufd.HW_INFO_FLAG_INPUT_TYPE, 1));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.getHwInfo(plain.idevId(), 2, 0));
        assertErrno(Errno.ENOENT, () -> fd.getHwInfo(ioas, 0, 0));
    }

    @Test
    void dirtyTrackingNeedsACapableDeviceAndADirtyHwpt() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain noDirty = test.mockDomainFlags(ioas, SelftestDevices.NO_DIRTY);
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptAlloc(DIRTY, noDirty.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0));
        IommufdSelftest.MockDomain capable = testCmdMockDomain(testIoctlIoasAlloc());
        int dirtyHwpt = fd.hwptAlloc(DIRTY, capable.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        assertErrno(Errno.EINVAL, () -> test.mockDomainReplace(noDirty.stdevId(), dirtyHwpt));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptSetDirtyTracking(noDirty.hwptId(), Iommufd.DIRTY_TRACKING_ENABLE));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptSetDirtyTracking(dirtyHwpt, 2));
        assertErrno(Errno.ENOENT, () -> fd.hwptSetDirtyTracking(ioas, Iommufd.DIRTY_TRACKING_ENABLE));
    }

    @Test
    void dirtyBitsMarkedByTheDeviceAreReportedThenCleared() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(testIoctlIoasAlloc());
        int hwpt = fd.hwptAlloc(DIRTY, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        long iova = MOCK_APERTURE_START;
        fd.optionSet(Iommufd.OPTION_HUGE_PAGES, ioas, 0); // one IOPTE per CPU page, so one bit per IOPTE
        testIoctlIoasMapFixed(ioas, buffer, BUFFER_SIZE, iova);
        long bitmapVa = SCRATCH_VA;
        writeUser(bitmapVa, new byte[] {(byte) 0b1000_0101, (byte) 0x80});
        assertErrno(Errno.EINVAL, () -> test.dirty(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE, bitmapVa));
        fd.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        assertThat(test.dirty(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE, bitmapVa)).as("out_nr_dirty: the bits set").isEqualTo(4);

        DirtyBitmap seen = fd.hwptGetDirtyBitmap(hwpt, Iommufd.GET_DIRTY_BITMAP_NO_CLEAR, iova, BUFFER_SIZE, PAGE_SIZE);
        assertThat(seen.isSet(0)).isTrue();
        assertThat(seen.isSet(2)).isTrue();
        assertThat(seen.isSet(7)).isTrue();
        assertThat(seen.isSet(15)).isTrue();
        assertThat(seen.cardinality()).isEqualTo(4);
        assertThat(fd.hwptGetDirtyBitmap(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE).cardinality()).as("NO_CLEAR kept them").isEqualTo(4);
        assertThat(fd.hwptGetDirtyBitmap(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE).cardinality()).as("then cleared").isZero();

        assertErrno(Errno.EINVAL, () -> fd.hwptGetDirtyBitmap(hwpt, 0, iova, BUFFER_SIZE, 0));
        assertErrno(Errno.EINVAL, () -> fd.hwptGetDirtyBitmap(hwpt, 0, iova + MOCK_PAGE_SIZE / 2, BUFFER_SIZE, PAGE_SIZE));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwptGetDirtyBitmap(hwpt, 4, iova, BUFFER_SIZE, PAGE_SIZE));
        assertErrno(Errno.EOVERFLOW, () -> fd.hwptGetDirtyBitmap(hwpt, 0, -PAGE_SIZE, 2 * PAGE_SIZE, PAGE_SIZE));
    }

    /** A bitmap may cover most of the 64-bit IOVA space (more than 2^63 bytes): only what is dirty costs. */
    @Test
    void aDirtyBitmapOverAHugeRangeReportsTheDirtyPages() {
        // Typed-only: through the ABI the caller supplies the whole bitmap (3 * 2^47 bytes here), which no caller memory holds.
        assumeFalse(throughAbi() || ON_KERNEL, "the ABI needs a caller bitmap of length / page_size bits");
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(testIoctlIoasAlloc());
        int hwpt = fd.hwptAlloc(DIRTY, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        long iova = MOCK_APERTURE_START;
        fd.optionSet(Iommufd.OPTION_HUGE_PAGES, ioas, 0);
        testIoctlIoasMapFixed(ioas, buffer, BUFFER_SIZE, iova);
        fd.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        writeUser(SCRATCH_VA, new byte[] {0b0000_0010});
        test.dirty(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE, SCRATCH_VA);
        long length = 0xC000_0000_0000_0000L; // 3 * 2^62 bytes, unsigned
        DirtyBitmap bitmap = fd.hwptGetDirtyBitmap(hwpt, 0, 0, length, PAGE_SIZE);
        assertThat(bitmap.pages()).isEqualTo(length >>> 12);
        assertThat(bitmap.cardinality()).isEqualTo(1);
        assertThat(bitmap.nextSetBit(0)).isEqualTo((iova + PAGE_SIZE) / PAGE_SIZE);
    }

    @Test
    void aDirtyLargeIopteMarksEveryBitItSpans() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(testIoctlIoasAlloc());
        int hwpt = fd.hwptAlloc(DIRTY, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        long iova = MOCK_APERTURE_START;
        testIoctlIoasMapFixed(ioas, buffer, BUFFER_SIZE, iova); // contiguous and aligned: one 64K IOPTE
        fd.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        writeUser(SCRATCH_VA, new byte[] {0, 0x10});
        test.dirty(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE, SCRATCH_VA);
        assertThat(fd.hwptGetDirtyBitmap(hwpt, 0, iova, BUFFER_SIZE, PAGE_SIZE).cardinality()).isEqualTo(BUFFER_SIZE / PAGE_SIZE);
    }

    private static byte[] selftestData(int iotlb, int pagetableType) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(iotlb).putInt(pagetableType).array();
    }
}
