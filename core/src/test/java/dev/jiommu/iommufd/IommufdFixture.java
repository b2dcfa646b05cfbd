package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

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

    // ---- objects and options --------------------------------------------------------------------------

    void testIoctlDestroy(int id) {
        ctx.destroy(id);
    }

    void testErrIoctlDestroy(Errno errno, int id) {
        assertErrno(errno, () -> ctx.destroy(id));
    }

    long testIoctlOptionGet(int optionId, int objectId) {
        return ctx.optionGet(optionId, objectId);
    }

    void testIoctlOptionSet(int optionId, int objectId, long value) {
        assertThat(ctx.optionSet(optionId, objectId, value)).as("val64 written back").isEqualTo(value);
    }

    void testErrIoctlOptionGet(Errno errno, int optionId, int objectId) {
        assertErrno(errno, () -> ctx.optionGet(optionId, objectId));
    }

    void testErrIoctlOptionSet(Errno errno, int optionId, int objectId, long value) {
        assertErrno(errno, () -> ctx.optionSet(optionId, objectId, value));
    }

    // ---- IOAS: unmap-all, copy, allowed and reserved ranges ----------------------------------------------

    /** IOAS_UNMAP of everything (iova 0, length U64_MAX); {@return the bytes it unmapped} */
    long testIoctlIoasUnmapAll(int ioasId) {
        return ctx.ioasUnmap(ioasId, 0, Iommufd.UNMAP_ALL_LENGTH);
    }

    /** IOAS_COPY; with MAP_FIXED_IOVA asserts the copy landed at {@code dstIova}. {@return the IOVA in the destination} */
    long testIoctlIoasCopy(int flags, int dstIoasId, long dstIova, int srcIoasId, long srcIova, long length) {
        long at = ctx.ioasCopy(dstIoasId, flags, srcIoasId, srcIova, length, dstIova);
        if ((flags & Iommufd.MAP_FIXED_IOVA) != 0) {
            assertThat(at).as("fixed copy destination").isEqualTo(dstIova);
        }
        return at;
    }

    void testErrIoctlIoasCopy(Errno errno, int flags, int dstIoasId, long dstIova, int srcIoasId, long srcIova, long length) {
        assertErrno(errno, () -> ctx.ioasCopy(dstIoasId, flags, srcIoasId, srcIova, length, dstIova));
    }

    void testIoctlIoasAllowIovas(int ioasId, IovaRange... allowed) {
        ctx.ioasAllowIovas(ioasId, List.of(allowed));
    }

    void testErrIoctlIoasAllowIovas(Errno errno, int ioasId, IovaRange... allowed) {
        assertErrno(errno, () -> ctx.ioasAllowIovas(ioasId, List.of(allowed)));
    }

    void testCmdAddReserved(int ioasId, long start, long length) {
        test.addReserved(ioasId, start, length);
    }

    void testErrCmdAddReserved(Errno errno, int ioasId, long start, long length) {
        assertErrno(errno, () -> test.addReserved(ioasId, start, length));
    }

    // ---- selftest devices, accesses and the pinning batch limit --------------------------------------------

    IommufdSelftest.MockDomain testCmdMockDomainFlags(int ptId, int deviceFlags) {
        return test.mockDomainFlags(ptId, deviceFlags);
    }

    int testCmdCreateAccess(int ioasId, int flags) {
        return test.createAccess(ioasId, flags);
    }

    void testCmdDestroyAccess(int accessId) {
        test.closeAccess(accessId);
    }

    /** ACCESS_PAGES; {@return the pin item's id} */
    int testCmdAccessPages(int accessId, int flags, long iova, long length, long uptr) {
        return test.accessPages(accessId, flags, iova, length, uptr);
    }

    void testCmdDestroyAccessPages(int accessId, int accessPagesId) {
        test.destroyAccessPages(accessId, accessPagesId);
    }

    void testErrDestroyAccessPages(Errno errno, int accessId, int accessPagesId) {
        assertErrno(errno, () -> test.destroyAccessPages(accessId, accessPagesId));
    }

    void testCmdAccessRw(int accessId, long iova, long length, long uptr, int flags) {
        test.accessRw(accessId, iova, length, uptr, flags);
    }

    /** The selftest's default size of the temporary buffers pinning works through. */
    static final int DEFAULT_TEMP_MEMORY_LIMIT = 65536;

    void testIoctlSetTempMemoryLimit(int limitBytes) {
        test.setTempMemoryLimit(limitBytes);
    }

    void testIoctlSetDefaultMemoryLimit() {
        test.setTempMemoryLimit(DEFAULT_TEMP_MEMORY_LIMIT);
    }
}
