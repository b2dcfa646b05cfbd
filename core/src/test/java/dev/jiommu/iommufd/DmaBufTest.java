package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.mem.DmaBuf;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** IOAS_MAP_FILE of the selftest's dma-buf and its revocation (iommufd-uapi.md §2.6, §8.2 ops 22–23). */
class DmaBufTest extends IommufdFixture {
    @Test
    void aDmaBufMapsDeviceMemoryDirectlyAndRevocationTakesItOutOfTheDomains() {
        assumeEmulated("dma-buf objects (a kernel dma-buf is an fd)");
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        assertErrno(Errno.EINVAL, () -> test.dmabufGet(0));
        assertErrno(Errno.EINVAL, () -> test.dmabufGet(513 * PAGE_SIZE));
        DmaBuf buf = test.dmabufGet(3 * PAGE_SIZE - 100);
        assertThat(buf.sizeBytes()).isEqualTo(3 * PAGE_SIZE);
        assertErrno(Errno.EINVAL, () -> fd.ioasMapFile(ioas, Iommufd.MAP_READABLE, buf, PAGE_SIZE, 3 * PAGE_SIZE, 0));

        long iova = fd.ioasMapFile(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, buf, 0, 3 * PAGE_SIZE, 0);
        dev.jiommu.driver.mock.MockDevice device = mock().devices().getFirst();
        assertThat(device.translate(iova + PAGE_SIZE + 8, dev.jiommu.pt.Access.READ)).isEqualTo(buf.physicalAddress(PAGE_SIZE + 8));
        assertThat(ctx().accounting().pinnedPages()).as("device memory is not charged").isZero();

        test.dmabufRevoke(buf, true);
        assertThat(device.canRead(iova)).isFalse();
        assertErrno(Errno.ENODEV, () -> fd.ioasMapFile(ioas, Iommufd.MAP_READABLE, buf, 0, PAGE_SIZE, 0));
        int access = test.createAccess(ioas, 0);
        assertErrno(Errno.ENODEV, () -> test.accessRw(access, iova, 8, SCRATCH_VA, 0));
        test.closeAccess(access);
        int withDomain = testIoctlIoasAlloc();
        testCmdMockDomain(withDomain);
        assertErrno(Errno.ENODEV, () -> fd.ioasCopy(withDomain, Iommufd.MAP_READABLE, ioas, iova, PAGE_SIZE, 0));
        assertThat(fd.ioasUnmap(ioas, iova, 3 * PAGE_SIZE)).isEqualTo(3 * PAGE_SIZE);

        test.dmabufRevoke(buf, false);
        long again = fd.ioasMapFile(ioas, Iommufd.MAP_READABLE, buf, PAGE_SIZE, PAGE_SIZE, 0);
        assertThat(device.canRead(again)).isTrue();
        DmaBuf foreign = new DmaBuf(memory(), PAGE_SIZE);
        assertErrno(Errno.EOPNOTSUPP, () -> test.dmabufRevoke(foreign, true));
        foreign.release();
        fd.destroy(md.stdevId());
    }
}
