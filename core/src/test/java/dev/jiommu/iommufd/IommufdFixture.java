package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.pt.DirtyBitmap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    /** The mock's huge IOPTE: 512 mock pages, 1 MiB. */
    static final long MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;
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
        for (MemoryFile file : memfds) {
            assertThat(file.pinnedPages()).as("pinned pages of %s after close", file.name()).isZero();
        }
        assertThat(ctx.accounting().pinnedPages()).as("pinned_vm after close").isZero();
        releaseCaseMemory();
        assertThat(memory.allocatedFrames()).as("physical frames after close (page tables leaked?)").isEqualTo(framesAtStart);
    }

    // ---- errno assertions -------------------------------------------------------------------------

    static void assertErrno(Errno expected, Executable call) {
        assertThatThrownBy(call::execute).isInstanceOf(ErrnoException.class)
                .satisfies(e -> assertThat(((ErrnoException) e).errno()).as(e.getMessage()).isEqualTo(expected));
    }

    /** {@return the IommufdException {@code call} throws, after checking its errno} */
    static IommufdException catchErrno(Errno expected, Executable call) {
        Throwable thrown = org.assertj.core.api.Assertions.catchThrowable(call::execute);
        assertThat(thrown).isInstanceOf(IommufdException.class);
        assertThat(((IommufdException) thrown).errno()).as(thrown.getMessage()).isEqualTo(expected);
        return (IommufdException) thrown;
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

    // ---- memory a case maps of its own (the kernel cases' mmap and memfd_create) ------------------

    /** Where {@link #reserveVa} hands out addresses: above the buffer and the scratch region. */
    private long nextCaseVa = 0x7f40_0000_0000L;
    private final List<Long> caseRegions = new ArrayList<>();
    private final List<MemoryFile> memfds = new ArrayList<>();

    /** {@return a fresh, huge-page aligned user address range of {@code length} bytes, unbacked and followed by a hole} */
    long reserveVa(long length) {
        long va = nextCaseVa;
        nextCaseVa = (va + length + 2 * HUGEPAGE_SIZE) & -HUGEPAGE_SIZE;
        return va;
    }

    /** mmap(MAP_FIXED) of fresh memory at {@code va}: physically contiguous, aligned to {@code physicalAlignBytes}. */
    long mmapFixed(long va, long length, long physicalAlignBytes, boolean writable) {
        user.register(va, length, physicalAlignBytes, writable);
        caseRegions.add(va);
        return va;
    }

    long mmapFixed(long va, long length, long physicalAlignBytes) {
        return mmapFixed(va, length, physicalAlignBytes, true);
    }

    /** mmap of fresh memory; a 2 MiB {@code physicalAlignBytes} gives what MAP_HUGETLB gives (one contiguous huge page per 2 MiB). */
    long mmap(long length, long physicalAlignBytes) {
        return mmapFixed(reserveVa(length), length, physicalAlignBytes);
    }

    /** munmap of a region {@link #mmapFixed} made; its pages must no longer be pinned (EBUSY otherwise). */
    void munmap(long va) {
        user.unregister(va);
        caseRegions.remove(Long.valueOf(va));
    }

    /** memfd_create + ftruncate: a writable memory file of {@code sizeBytes}, zero-filled. */
    MemoryFile memfdCreate(long sizeBytes) {
        MemoryFile file = new MemoryFile(memory, "memfd" + memfds.size(), sizeBytes, true);
        memfds.add(file);
        return file;
    }

    /** Returns what the case mapped of its own, once the context has dropped every pin. */
    private void releaseCaseMemory() {
        for (long va : List.copyOf(caseRegions)) {
            munmap(va);
        }
        for (MemoryFile file : memfds) {
            file.close();
        }
        memfds.clear();
    }

    // ---- more helpers in the manner of iommufd_utils.h ------------------------------------------------

    long testIoctlIoasMapFileId(int ioasId, MemoryFile file, long start, long length) {
        return ctx.ioasMapFile(ioasId, Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, file, start, length, 0);
    }

    void testErrIoctlIoasMapFileId(Errno errno, int ioasId, MemoryFile file, long start, long length) {
        assertErrno(errno, () -> testIoctlIoasMapFileId(ioasId, file, start, length));
    }

    /** IOAS_COPY of [srcIova, +length) to exactly {@code dstIova}, read and write. */
    void testIoctlIoasCopyFixed(int dstIoasId, int srcIoasId, long srcIova, long length, long dstIova) {
        assertThat(ctx.ioasCopy(dstIoasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE,
                srcIoasId, srcIova, length, dstIova)).isEqualTo(dstIova);
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

    void testErrMockDomainFlags(Errno errno, int ptId, int deviceFlags) {
        assertErrno(errno, () -> test.mockDomainFlags(ptId, deviceFlags));
    }

    /** MOCK_DOMAIN_REPLACE of the RID; {@return the HWPT it is attached to now} */
    int testCmdMockDomainReplace(int stdevId, int ptId) {
        return test.mockDomainReplace(stdevId, ptId);
    }

    void testErrMockDomainReplace(Errno errno, int stdevId, int ptId) {
        assertErrno(errno, () -> test.mockDomainReplace(stdevId, ptId));
    }

    // ---- HWPT_ALLOC, GET_HW_INFO, dirty tracking --------------------------------------------------------

    /** HWPT_ALLOC of a paging HWPT without a driver payload; {@return its ID} */
    int testCmdHwptAlloc(int devId, int ptId, int flags) {
        return ctx.hwptAlloc(flags, devId, ptId, Iommufd.HWPT_DATA_NONE, null, 0);
    }

    /** HWPT_ALLOC with the mock's {@code iommu_hwpt_selftest} payload choosing the page-table type. */
    int testCmdHwptAllocIommupt(int devId, int ptId, int flags, int pagetableType) {
        byte[] data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(pagetableType).array();
        return ctx.hwptAlloc(flags, devId, ptId, MockIommuDriver.HWPT_DATA_SELFTEST, data, 0);
    }

    void testErrHwptAlloc(Errno errno, int devId, int ptId, int flags) {
        assertErrno(errno, () -> ctx.hwptAlloc(flags, devId, ptId, Iommufd.HWPT_DATA_NONE, null, 0));
    }

    /**
     * GET_HW_INFO asking for {@code dataType} (INPUT_TYPE is set unless it is DEFAULT, as the kernel
     * helper does), checked the way the kernel helper checks it: the mock's type and struct come back.
     */
    Iommufd.HwInfo testCmdGetHwInfo(int devId, int dataType) {
        int flags = dataType == DriverHwInfo.TYPE_DEFAULT ? 0 : Iommufd.HW_INFO_FLAG_INPUT_TYPE;
        Iommufd.HwInfo info = ctx.getHwInfo(devId, flags, dataType);
        assertThat(info.dataType()).as("out_data_type").isEqualTo(MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        ByteBuffer data = ByteBuffer.wrap(info.data()).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(data.remaining()).as("sizeof(struct iommu_test_hw_info)").isEqualTo(8);
        assertThat(data.getInt(0)).as("iommu_test_hw_info.flags").isZero();
        assertThat(data.getInt(4)).as("iommu_test_hw_info.test_reg").isEqualTo(MockIommuDriver.HW_INFO_SELFTEST_REGVAL);
        return info;
    }

    void testErrGetHwInfo(Errno errno, int devId, int dataType) {
        int flags = dataType == DriverHwInfo.TYPE_DEFAULT ? 0 : Iommufd.HW_INFO_FLAG_INPUT_TYPE;
        assertErrno(errno, () -> ctx.getHwInfo(devId, flags, dataType));
    }

    /** {@return GET_HW_INFO's out_capabilities for the device} */
    long testCmdGetHwCapabilities(int devId) {
        return testCmdGetHwInfo(devId, DriverHwInfo.TYPE_DEFAULT).capabilities();
    }

    /** {@return GET_HW_INFO's out_max_pasid_log2 for the device} */
    int testCmdGetHwInfoPasid(int devId) {
        return testCmdGetHwInfo(devId, DriverHwInfo.TYPE_DEFAULT).maxPasidLog2();
    }

    void testCmdSetDirtyTracking(int hwptId, boolean enabled) {
        ctx.hwptSetDirtyTracking(hwptId, enabled ? Iommufd.DIRTY_TRACKING_ENABLE : 0);
    }

    /** HWPT_GET_DIRTY_BITMAP; {@return the bits the kernel would OR into the caller's bitmap} */
    DirtyBitmap testCmdGetDirtyBitmap(int hwptId, long length, long iova, long pageSize, int flags) {
        DirtyBitmap bitmap = ctx.hwptGetDirtyBitmap(hwptId, flags, iova, length, pageSize);
        assertThat(bitmap.pages()).as("bits in the bitmap").isEqualTo(length / pageSize);
        return bitmap;
    }

    /** The selftest's DIRTY op: marks dirty the IOPTEs behind the bits set at {@code uptr}; {@return out_nr_dirty} */
    long testCmdMockDomainSetDirty(int hwptId, long length, long iova, long pageSize, long uptr) {
        return test.dirty(hwptId, 0, iova, length, pageSize, uptr);
    }

    // ---- PASID attach, replace, detach -----------------------------------------------------------------

    void testCmdPasidAttach(int stdevId, int pasid, int ptId) {
        test.pasidAttach(stdevId, pasid, ptId);
    }

    void testErrPasidAttach(Errno errno, int stdevId, int pasid, int ptId) {
        assertErrno(errno, () -> test.pasidAttach(stdevId, pasid, ptId));
    }

    void testCmdPasidReplace(int stdevId, int pasid, int ptId) {
        test.pasidReplace(stdevId, pasid, ptId);
    }

    void testErrPasidReplace(Errno errno, int stdevId, int pasid, int ptId) {
        assertErrno(errno, () -> test.pasidReplace(stdevId, pasid, ptId));
    }

    void testCmdPasidDetach(int stdevId, int pasid) {
        test.pasidDetach(stdevId, pasid);
    }

    /** PASID_CHECK_HWPT: {@code pasid} is attached to {@code hwptId} (0: to nothing). */
    void testCmdPasidCheckHwpt(int stdevId, int pasid, int hwptId) {
        test.pasidCheckHwpt(stdevId, pasid, hwptId);
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

    void testCmdAccessReplaceIoas(int accessFd, int ioasId) {
        test.accessReplaceIoas(accessFd, ioasId);
    }

    /**
     * MD_CHECK_MAP for a memory file. The kernel resolves {@code uptr} through an mmap of the memfd;
     * a {@link MemoryFile} is its own address space, so this asks the HWPT's domain directly whether
     * each mock page of [iova, +length) translates to the file page at {@code offset}.
     */
    void checkMockIovaFile(int hwptId, MemoryFile file, long offset, long iova, long length) {
        IommuPagingDomain domain = ctx.objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class).domain;
        long granule = Long.lowestOneBit(domain.pageSizes());
        assertThat((iova | length | offset) & (granule - 1)).as("check_map alignment to 0x%x", granule).isZero();
        for (long off = 0; off < length; off += granule) {
            assertThat(domain.iovaToPhys(iova + off)).as("hwpt %d iova 0x%x vs %s offset 0x%x", hwptId, iova + off, file.name(), offset + off)
                    .isEqualTo(file.physicalAddress(offset + off));
        }
    }

    /** MD_CHECK_REFS for a memory file: every page of [offset, +length) has {@code refs} pins. */
    static void checkFileRefs(MemoryFile file, long offset, long length, int refs) {
        for (long off = offset & -PAGE_SIZE; off < offset + length; off += PAGE_SIZE) {
            assertThat(file.pinCount(off)).as("pins of %s page at 0x%x", file.name(), off).isEqualTo(refs);
        }
    }

    /**
     * The mock device behind selftest object {@code stdevId}, so a case can issue DMA through it
     * (test-only: the uAPI hands out no such thing; the kernel selftest cannot DMA at all).
     */
    MockDevice mockDevice(int stdevId) {
        return (MockDevice) ctx.objects.get(stdevId, ObjectType.SELFTEST, SelftestDevice.class).idev.device;
    }
}
