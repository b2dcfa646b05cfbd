package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** A first end-to-end pass through the object model: IOAS, mock domain, map, copy, unmap, close. */
class IommufdSmokeTest extends IommufdFixture {
    @Test
    void ioasWithMockDomainMapsPinsCopiesAndReleases() {
        int ioas = testIoctlIoasAlloc();
        assertThat(ioas).isEqualTo(1);
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        assertThat(md).isEqualTo(new IommufdSelftest.MockDomain(2, 4, 3));
        assertThat(fd.ioasIovaRanges(ioas).ranges()).containsExactly(new IovaRange(MOCK_APERTURE_START, MOCK_APERTURE_LAST));
        assertThat(fd.ioasIovaRanges(ioas).iovaAlignment()).isEqualTo(MOCK_PAGE_SIZE);

        long iova = testIoctlIoasMap(ioas, buffer, BUFFER_SIZE);
        assertThat(iova).isBetween(MOCK_APERTURE_START, MOCK_APERTURE_LAST);
        checkMockIova(md.hwptId(), buffer, iova, BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 1);

        int ioas2 = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md2 = testCmdMockDomain(ioas2);
        long copied = fd.ioasCopy(ioas2, Iommufd.MAP_READABLE, ioas, iova, BUFFER_SIZE, 0);
        checkMockIova(md2.hwptId(), buffer, copied, BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 1); // pinned once for both domains

        testErrIoctlIoasUnmap(Errno.ENOENT, ioas, iova + PAGE_SIZE, PAGE_SIZE);
        testIoctlIoasUnmap(ioas, iova, BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 1);
        assertErrno(Errno.EBUSY, () -> fd.destroy(ioas2));
        // An area outside a domain's aperture keeps the domain out.
        int ioas3 = testIoctlIoasAlloc();
        fd.ioasCopy(ioas3, Iommufd.MAP_READABLE | Iommufd.MAP_FIXED_IOVA, ioas2, copied, PAGE_SIZE, 0x10000);
        testErrMockDomain(Errno.EADDRINUSE, ioas3);
        fd.destroy(md2.stdevId());
        checkRefs(buffer, BUFFER_SIZE, 0);
        assertErrno(Errno.ENOENT, () -> fd.destroy(md2.hwptId()));
        fd.destroy(ioas2);
    }
}
