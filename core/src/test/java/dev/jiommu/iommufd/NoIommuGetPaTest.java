package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * IOMMU_IOAS_NOIOMMU_GET_PA (0x95): the physical address behind an IOVA and its contiguous run,
 * behind the context's switch (the kernel's CONFIG_IOMMUFD_NOIOMMU), with the kernel's checks in
 * the kernel's order (ioas.c and io_pagetable.c's iopt_get_phys, 7.3).
 */
class NoIommuGetPaTest extends IommufdFixture {
    @Test
    void withoutNoIommuSupportEveryCallIsEopnotsupp() {
        // The reference kernel is built without it: whatever the arguments, EOPNOTSUPP.
        int ioas = testIoctlIoasAlloc();
        assertErrno(Errno.EOPNOTSUPP, () -> fd.ioasNoIommuGetPa(0, ioas, MOCK_APERTURE_START, PAGE_SIZE));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.ioasNoIommuGetPa(0, ioas + 100, 0, 0));
    }

    @Test
    void checksComeInTheKernelsOrder() {
        ctx().noIommuSupport(true);
        int ioas = testIoctlIoasAlloc();
        ctx().capSysRawio(false);
        assertErrno(Errno.EPERM, () -> fd.ioasNoIommuGetPa(1, ioas + 100, -1L, 0));
        ctx().capSysRawio(true);
        assertErrno(Errno.EOPNOTSUPP, () -> fd.ioasNoIommuGetPa(1, ioas, 0, PAGE_SIZE));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.ioasNoIommuGetPa(Iommufd.NOIOMMU_RESERVED_SET, ioas, 0, PAGE_SIZE));
        assertErrno(Errno.EINVAL, () -> fd.ioasNoIommuGetPa(0, ioas + 100, -1L, 0));
        assertErrno(Errno.EOVERFLOW, () -> fd.ioasNoIommuGetPa(0, ioas + 100, -1L, PAGE_SIZE));
        assertErrno(Errno.ENOENT, () -> fd.ioasNoIommuGetPa(0, ioas + 100, 0, PAGE_SIZE));
        assertErrno(Errno.ENOENT, () -> fd.ioasNoIommuGetPa(0, ioas, 0, PAGE_SIZE));
    }

    @Test
    void answersThePinnedPagesAndTheirContiguousRun() {
        ctx().noIommuSupport(true);
        int ioas = testIoctlIoasAlloc();
        long iova = MOCK_APERTURE_START;
        testIoctlIoasMapFixed(ioas, buffer, BUFFER_SIZE, iova);
        assertErrno(Errno.EOPNOTSUPP, () -> fd.ioasNoIommuGetPa(0, ioas, iova, PAGE_SIZE)); // nothing pins the pages yet
        testCmdMockDomain(ioas);

        // The buffer is one physically contiguous run (2 MiB-aligned registered memory).
        long base = user().physicalAddress(buffer);
        Iommufd.PhysicalRange whole = fd.ioasNoIommuGetPa(0, ioas, iova, 1L << 40);
        assertThat(whole).isEqualTo(new Iommufd.PhysicalRange(base, BUFFER_SIZE));
        assertThat(fd.ioasNoIommuGetPa(0, ioas, iova + 3 * PAGE_SIZE + 5, 100))
                .as("capped by the length asked").isEqualTo(new Iommufd.PhysicalRange(base + 3 * PAGE_SIZE + 5, 100));
        assertThat(fd.ioasNoIommuGetPa(0, ioas, iova + BUFFER_SIZE - 10, PAGE_SIZE))
                .as("the area's last bytes").isEqualTo(new Iommufd.PhysicalRange(base + BUFFER_SIZE - 10, 10));
        assertErrno(Errno.ENOENT, () -> fd.ioasNoIommuGetPa(0, ioas, iova + BUFFER_SIZE, PAGE_SIZE));
    }

    @Test
    void aRunStopsWherePhysicalPagesStopBeingAdjacent() {
        ctx().noIommuSupport(true);
        int ioas = testIoctlIoasAlloc();
        testCmdMockDomain(ioas);
        // Two separately registered pages, mapped back to back in the other order: contiguous in IOVA,
        // not in physical memory (whatever the allocator did, the lower IOVA's page is not below the other).
        long first = mmap(PAGE_SIZE, PAGE_SIZE);
        long second = mmap(PAGE_SIZE, PAGE_SIZE);
        long low = user().physicalAddress(first) > user().physicalAddress(second) ? first : second;
        long high = low == first ? second : first;
        testIoctlIoasMapFixed(ioas, low, PAGE_SIZE, MOCK_APERTURE_START);
        testIoctlIoasMapFixed(ioas, high, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
        assertThat(user().physicalAddress(high)).isNotEqualTo(user().physicalAddress(low) + PAGE_SIZE);
        assertThat(fd.ioasNoIommuGetPa(0, ioas, MOCK_APERTURE_START, 2 * PAGE_SIZE).lengthBytes()).as("one area, one page")
                .isEqualTo(PAGE_SIZE);
    }
}
