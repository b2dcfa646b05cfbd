package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** HW queues of the mock vIOMMU (iommufd-uapi.md §2.21, §3.10, §8.3). */
class HwQueueTest extends IommufdFixture {
    private static final int TYPE = 0xdeadbeef;

    private int ioas;
    private int viommu;
    private final long iova = MOCK_APERTURE_START;

    @BeforeEach
    void viommuOnAMappedStage2() {
        ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        int parent = fd.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        viommu = fd.viommuAlloc(0, TYPE, md.idevId(), parent, null).viommuId();
        testIoctlIoasMapFixed(ioas, buffer, BUFFER_SIZE, iova);
    }

    @Test
    void queuesComeInOrderLockTheirMemoryAndGoInReverse() {
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwQueueAlloc(1, viommu, TYPE, 0, iova, PAGE_SIZE));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.hwQueueAlloc(0, viommu, 0, 0, iova, PAGE_SIZE));
        assertErrno(Errno.EINVAL, () -> fd.hwQueueAlloc(0, viommu, TYPE, 0, iova, 0));
        assertErrno(Errno.EOVERFLOW, () -> fd.hwQueueAlloc(0, viommu, TYPE, 0, -PAGE_SIZE, 2 * PAGE_SIZE));
        assertErrno(Errno.ENOENT, () -> fd.hwQueueAlloc(0, ioas, TYPE, 0, iova, PAGE_SIZE));
        assertErrno(Errno.ENOENT, () -> fd.hwQueueAlloc(0, viommu, TYPE, 0, iova + BUFFER_SIZE, PAGE_SIZE));
        assertErrno(Errno.EINVAL, () -> fd.hwQueueAlloc(0, viommu, TYPE, 2, iova, PAGE_SIZE));
        assertErrno(Errno.EIO, () -> fd.hwQueueAlloc(0, viommu, TYPE, 1, iova, PAGE_SIZE));
        checkRefs(buffer, BUFFER_SIZE, 1);

        int q0 = fd.hwQueueAlloc(0, viommu, TYPE, 0, iova + 256, 256);
        assertErrno(Errno.EEXIST, () -> fd.hwQueueAlloc(0, viommu, TYPE, 0, iova, PAGE_SIZE));
        int q1 = fd.hwQueueAlloc(0, viommu, TYPE, 1, iova + PAGE_SIZE, 2 * PAGE_SIZE);
        testErrIoctlIoasUnmap(Errno.EBUSY, ioas, iova, BUFFER_SIZE);
        assertErrno(Errno.EBUSY, () -> fd.destroy(q0));
        assertErrno(Errno.EBUSY, () -> fd.destroy(viommu));
        fd.destroy(q1);
        fd.destroy(q0);
        assertThat(fd.ioasUnmap(ioas, iova, BUFFER_SIZE)).isEqualTo(BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 0);
    }
}
