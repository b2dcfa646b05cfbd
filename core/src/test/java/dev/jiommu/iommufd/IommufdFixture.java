package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.function.Executable;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The world of tools/testing/selftests/iommu/iommufd_utils.h, for ported kernel cases: a context
 * over user memory with the global 16-page {@code buffer} (2 MiB aligned, like the selftest's
 * THP-backed one) and the 16-page memfd {@code mfd}, a mock bus, and helpers in the kernel's
 * spirit: {@code testIoctlX} asserts success, {@code testErrIoctlX(errno, …)} asserts that errno.
 *
 * <p>Teardown closes the context and checks, as every kernel case does, that no page of the
 * buffer is still pinned, and that no physical frame beyond the buffers leaked.
 */
abstract class IommufdFixture {
    static final long PAGE_SIZE = 4096;
    static final long HUGEPAGE_SIZE = 2L << 20;
    static final long BUFFER_SIZE = 16 * PAGE_SIZE;
    static final long MOCK_PAGE_SIZE = 2048;
    static final long MOCK_APERTURE_START = MockIommuDriver.APERTURE_START;
    static final long MOCK_APERTURE_LAST = MockIommuDriver.APERTURE_LAST;
    /** Where the global buffer lives in the user address space. */
    static final long BUFFER_VA = 0x7f00_0000_0000L;
    /** A second, larger region for cases that map more than the buffer. */
    static final long SCRATCH_VA = 0x7f10_0000_0000L;
    static final long SCRATCH_SIZE = 64L << 20;

    final PhysicalMemory memory = PhysicalMemory.create(1L << 30);
    final RegisteredUserMemory user = new RegisteredUserMemory(memory);
    final MockIommuDriver mock = new MockIommuDriver(memory);
    final long buffer = BUFFER_VA;
    final MemoryFile mfd;
    final long framesAtStart;
    IommufdContext ctx;
    IommufdSelftest test;

    IommufdFixture() {
        user.register(BUFFER_VA, BUFFER_SIZE, HUGEPAGE_SIZE, true);
        user.register(SCRATCH_VA, SCRATCH_SIZE, HUGEPAGE_SIZE, true);
        mfd = new MemoryFile(memory, "mfd", BUFFER_SIZE, true);
        mfd.write(0, new byte[(int) BUFFER_SIZE]);
        framesAtStart = memory.allocatedFrames();
        ctx = newContext();
        test = ctx.selftest();
    }

    IommufdContext newContext() {
        return new IommufdContext(user, mock);
    }

    @AfterEach
    void teardownChecksNothingStaysPinned() {
        ctx.close();
        assertThat(user.pinnedPages()).as("pinned user pages after close").isZero();
        assertThat(mfd.pinnedPages()).as("pinned memfd pages after close").isZero();
        assertThat(ctx.accounting().pinnedPages()).as("pinned_vm after close").isZero();
        assertThat(memory.allocatedFrames()).as("physical frames after close (page tables leaked?)").isEqualTo(framesAtStart);
    }

    // ---- errno assertions -------------------------------------------------------------------------

    static void assertErrno(Errno expected, Executable call) {
        assertThatThrownBy(call::execute).isInstanceOf(ErrnoException.class)
                .satisfies(e -> assertThat(((ErrnoException) e).errno()).as(e.getMessage()).isEqualTo(expected));
    }

    // ---- helpers in the manner of iommufd_utils.h ----------------------------------------------------

    int testIoctlIoasAlloc() {
        return ctx.ioasAlloc();
    }

    long testIoctlIoasMap(int ioasId, long va, long length) {
        return ctx.ioasMap(ioasId, Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, 0);
    }

    void testIoctlIoasMapFixed(int ioasId, long va, long length, long iova) {
        assertThat(ctx.ioasMap(ioasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, iova))
                .isEqualTo(iova);
    }

    void testErrIoctlIoasMapFixed(Errno errno, int ioasId, long va, long length, long iova) {
        assertErrno(errno, () -> ctx.ioasMap(ioasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, iova));
    }

    void testErrIoctlIoasMap(Errno errno, int ioasId, long va, long length) {
        assertErrno(errno, () -> testIoctlIoasMap(ioasId, va, length));
    }

    void testIoctlIoasUnmap(int ioasId, long iova, long length) {
        assertThat(ctx.ioasUnmap(ioasId, iova, length)).isEqualTo(length);
    }

    void testErrIoctlIoasUnmap(Errno errno, int ioasId, long iova, long length) {
        assertErrno(errno, () -> ctx.ioasUnmap(ioasId, iova, length));
    }

    IommufdSelftest.MockDomain testCmdMockDomain(int ptId) {
        return test.mockDomain(ptId);
    }

    void testErrMockDomain(Errno errno, int ptId) {
        assertErrno(errno, () -> test.mockDomain(ptId));
    }

    void checkMockIova(int hwptId, long va, long iova, long length) {
        test.mdCheckMap(hwptId, iova, length, va);
    }

    void checkRefs(long va, long length, int refs) {
        test.mdCheckRefs(va, length, refs);
    }
}
