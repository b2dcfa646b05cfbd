package dev.jiommu.iommufd;

import dev.jiommu.abi.AbiIommufd;
import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.abi.KernelIommufd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

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

    /**
     * {@code -Djiommu.backend=kernel}: the cases run on the real {@code /dev/iommu} of the machine
     * (the reference kernel, through {@code ./jiommu verify-kernel}) instead of an emulated context.
     * The buffers are then real memory mapped at the same addresses, and what only the emulation can
     * show (its objects, frames, pin counts, emulated files) is asked through accessors that skip the
     * case there ({@link #ctx()}, {@link #user()}, {@link #memory()}, {@link #mock()}, {@link #mfd()}).
     */
    static final boolean ON_KERNEL = "kernel".equals(System.getProperty("jiommu.backend"));

    private final PhysicalMemory memory = PhysicalMemory.create(1L << 30);
    private final RegisteredUserMemory user = new RegisteredUserMemory(memory);
    private final MockIommuDriver mock = new MockIommuDriver(memory);
    /** On the kernel: the real mappings standing for the user memory. */
    private final NativeMappings mappings = ON_KERNEL ? new NativeMappings() : null;
    final long buffer = BUFFER_VA;
    private final MemoryFile mfd;
    final long framesAtStart;
    /** The context: what the cases set up and inspect beyond the uAPI (objects, accounting, devices). */
    private IommufdContext ctx;
    /** What the cases call: {@link #ctx} itself, the same context through the ABI ({@link #throughAbi()}), or the kernel. */
    Iommufd fd;
    IommufdSelftest test;

    IommufdFixture() {
        // The selftest's buffer is THP-backed, so physically contiguous; on the kernel a huge page gives that.
        if (ON_KERNEL) {
            mappings.map(BUFFER_VA, HUGEPAGE_SIZE, true, true);
        } else {
            user.register(BUFFER_VA, BUFFER_SIZE, HUGEPAGE_SIZE, true);
        }
        mmapFixed(SCRATCH_VA, SCRATCH_SIZE, HUGEPAGE_SIZE, true, false);
        if (throughAbi() && !ON_KERNEL) {
            user.register(ABI_SCRATCH_VA, ABI_SCRATCH_SIZE, PAGE_SIZE, true);
        }
        mfd = new MemoryFile(memory, "mfd", BUFFER_SIZE, true);
        mfd.write(0, new byte[(int) BUFFER_SIZE]);
        framesAtStart = memory.allocatedFrames();
        if (ON_KERNEL) {
            fd = KernelIommufd.open();
        } else {
            ctx = newContext();
            fd = throughAbi() ? new AbiIommufd(ctx, user, ABI_SCRATCH_VA, ABI_SCRATCH_SIZE) : ctx;
        }
        test = fd.selftest();
    }

    // ---- what only the emulation has: these skip the case on the kernel ----------------------------------

    static void assumeEmulated(String what) {
        assumeFalse(ON_KERNEL, "needs the emulation's " + what);
    }

    /** {@return the emulated context} (skips the case on the kernel) */
    IommufdContext ctx() {
        assumeEmulated("context");
        return ctx;
    }

    /** {@return the emulated user memory} (skips the case on the kernel) */
    RegisteredUserMemory user() {
        assumeEmulated("user memory bookkeeping");
        return user;
    }

    /** {@return the emulated physical memory} (skips the case on the kernel) */
    PhysicalMemory memory() {
        assumeEmulated("physical memory");
        return memory;
    }

    /** {@return the mock driver} (skips the case on the kernel) */
    MockIommuDriver mock() {
        assumeEmulated("mock driver object");
        return mock;
    }

    /** {@return the global memfd, an emulated memory file} (skips the case on the kernel) */
    MemoryFile mfd() {
        assumeEmulated("memory files");
        return mfd;
    }

    /** {@return {@code length} bytes of user memory at {@code va}} */
    byte[] readUser(long va, int length) {
        return ON_KERNEL ? mappings.read(va, length) : user.read(va, length);
    }

    /** Writes {@code bytes} to user memory at {@code va}. */
    void writeUser(long va, byte[] bytes) {
        if (ON_KERNEL) {
            mappings.write(va, bytes);
        } else {
            user.write(va, bytes);
        }
    }

    /** Where {@link AbiIommufd} builds its structs and payloads: a region no case touches. */
    static final long ABI_SCRATCH_VA = 0x7f30_0000_0000L;
    static final long ABI_SCRATCH_SIZE = 4L << 20;

    /**
     * Whether the cases run through the ABI: typed call → uAPI struct in user memory →
     * {@link dev.jiommu.abi.AbiDecoder} → the context, and back. The {@code *AbiTest} subclasses of
     * the ported cases say yes; it is asked from this constructor, so it must return a constant.
     */
    boolean throughAbi() {
        return false;
    }

    /** {@return a second, independent iommufd over the same user memory: another open of /dev/iommu} */
    Iommufd openAnother() {
        return ON_KERNEL ? KernelIommufd.open() : newContext();
    }

    IommufdContext newContext() {
        return new IommufdContext(user, mock);
    }

    @AfterEach
    void teardownChecksNothingStaysPinned() {
        fd.close();
        if (ON_KERNEL) {
            mappings.close();
            return;
        }
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
        return fd.ioasAlloc();
    }

    long testIoctlIoasMap(int ioasId, long va, long length) {
        return fd.ioasMap(ioasId, Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, 0);
    }

    void testIoctlIoasMapFixed(int ioasId, long va, long length, long iova) {
        assertThat(fd.ioasMap(ioasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, iova))
                .isEqualTo(iova);
    }

    void testErrIoctlIoasMapFixed(Errno errno, int ioasId, long va, long length, long iova) {
        assertErrno(errno, () -> fd.ioasMap(ioasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, va, length, iova));
    }

    void testErrIoctlIoasMap(Errno errno, int ioasId, long va, long length) {
        assertErrno(errno, () -> testIoctlIoasMap(ioasId, va, length));
    }

    void testIoctlIoasUnmap(int ioasId, long iova, long length) {
        assertThat(fd.ioasUnmap(ioasId, iova, length)).isEqualTo(length);
    }

    void testErrIoctlIoasUnmap(Errno errno, int ioasId, long iova, long length) {
        assertErrno(errno, () -> fd.ioasUnmap(ioasId, iova, length));
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
        return mmapFixed(va, length, physicalAlignBytes, writable, true);
    }

    /** On the kernel a 2 MiB alignment asks for huge pages, as the selftest's MAP_HUGETLB does. */
    private long mmapFixed(long va, long length, long physicalAlignBytes, boolean writable, boolean caseRegion) {
        if (ON_KERNEL) {
            mappings.map(va, length, physicalAlignBytes >= HUGEPAGE_SIZE && length % HUGEPAGE_SIZE == 0 && caseRegion, writable);
        } else {
            user.register(va, length, physicalAlignBytes, writable);
        }
        if (caseRegion) {
            caseRegions.add(va);
        }
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
        if (ON_KERNEL) {
            mappings.unmap(va);
        } else {
            user.unregister(va);
        }
        caseRegions.remove(Long.valueOf(va));
    }

    /** memfd_create + ftruncate: a writable memory file of {@code sizeBytes}, zero-filled. */
    MemoryFile memfdCreate(long sizeBytes) {
        assumeEmulated("memory files");
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
        return fd.ioasMapFile(ioasId, Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, file, start, length, 0);
    }

    void testErrIoctlIoasMapFileId(Errno errno, int ioasId, MemoryFile file, long start, long length) {
        assertErrno(errno, () -> testIoctlIoasMapFileId(ioasId, file, start, length));
    }

    /** IOAS_COPY of [srcIova, +length) to exactly {@code dstIova}, read and write. */
    void testIoctlIoasCopyFixed(int dstIoasId, int srcIoasId, long srcIova, long length, long dstIova) {
        assertThat(fd.ioasCopy(dstIoasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE,
                srcIoasId, srcIova, length, dstIova)).isEqualTo(dstIova);
    }

    // ---- objects and options --------------------------------------------------------------------------

    void testIoctlDestroy(int id) {
        fd.destroy(id);
    }

    void testErrIoctlDestroy(Errno errno, int id) {
        assertErrno(errno, () -> fd.destroy(id));
    }

    long testIoctlOptionGet(int optionId, int objectId) {
        return fd.optionGet(optionId, objectId);
    }

    void testIoctlOptionSet(int optionId, int objectId, long value) {
        assertThat(fd.optionSet(optionId, objectId, value)).as("val64 written back").isEqualTo(value);
    }

    void testErrIoctlOptionGet(Errno errno, int optionId, int objectId) {
        assertErrno(errno, () -> fd.optionGet(optionId, objectId));
    }

    void testErrIoctlOptionSet(Errno errno, int optionId, int objectId, long value) {
        assertErrno(errno, () -> fd.optionSet(optionId, objectId, value));
    }

    // ---- IOAS: unmap-all, copy, allowed and reserved ranges ----------------------------------------------

    /** IOAS_UNMAP of everything (iova 0, length U64_MAX); {@return the bytes it unmapped} */
    long testIoctlIoasUnmapAll(int ioasId) {
        return fd.ioasUnmap(ioasId, 0, Iommufd.UNMAP_ALL_LENGTH);
    }

    /** IOAS_COPY; with MAP_FIXED_IOVA asserts the copy landed at {@code dstIova}. {@return the IOVA in the destination} */
    long testIoctlIoasCopy(int flags, int dstIoasId, long dstIova, int srcIoasId, long srcIova, long length) {
        long at = fd.ioasCopy(dstIoasId, flags, srcIoasId, srcIova, length, dstIova);
        if ((flags & Iommufd.MAP_FIXED_IOVA) != 0) {
            assertThat(at).as("fixed copy destination").isEqualTo(dstIova);
        }
        return at;
    }

    void testErrIoctlIoasCopy(Errno errno, int flags, int dstIoasId, long dstIova, int srcIoasId, long srcIova, long length) {
        assertErrno(errno, () -> fd.ioasCopy(dstIoasId, flags, srcIoasId, srcIova, length, dstIova));
    }

    void testIoctlIoasAllowIovas(int ioasId, IovaRange... allowed) {
        fd.ioasAllowIovas(ioasId, List.of(allowed));
    }

    void testErrIoctlIoasAllowIovas(Errno errno, int ioasId, IovaRange... allowed) {
        assertErrno(errno, () -> fd.ioasAllowIovas(ioasId, List.of(allowed)));
    }

    void testCmdAddReserved(int ioasId, long start, long length) {
        test.addReserved(ioasId, start, length);
    }

    void testErrCmdAddReserved(Errno errno, int ioasId, long start, long length) {
        assertErrno(errno, () -> test.addReserved(ioasId, start, length));
    }

    // ---- HWPTs, invalidation, faults, vIOMMUs, vDEVICEs, vEVENTQs, HW queues, mmap --------------------------

    /** The selftest's uAPI constants (iommufd_test.h) that the ported cases pass or expect. */
    static final int IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
    static final int IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
    static final int IOMMU_HWPT_DATA_SELFTEST = MockIommuDriver.HWPT_DATA_SELFTEST;
    static final int IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
    static final int IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
    static final int IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
    static final int IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
    static final int IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
    static final int IOMMU_VEVENTQ_TYPE_SELFTEST = IommufdSelftest.VEVENTQ_TYPE_SELFTEST;
    static final int IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
    static final int IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
    static final int IOMMU_TEST_HW_QUEUE_MAX = 2;
    static final int IOMMU_TEST_INVALIDATE_FLAG_ALL = 1;
    static final int MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
    static final int MOCK_DEV_CACHE_ID_MAX = 3;
    /** Page-fault perm bits, flags and response codes (struct iommu_hwpt_pgfault, iommu_hwpt_page_response). */
    static final int IOMMU_PGFAULT_PERM_READ = 1;
    static final int IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
    static final int IOMMU_PGFAULT_FLAGS_PASID_VALID = 1;
    static final int IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
    static final int IOMMUFD_PAGE_RESP_SUCCESS = 0;

    /** IOMMU_HWPT_ALLOC of a paging HWPT on {@code ptId} without payload or fault queue. {@return its ID} */
    int testCmdHwptAlloc(int deviceId, int ptId, int flags) {
        int hwptId = fd.hwptAlloc(flags, deviceId, ptId, Iommufd.HWPT_DATA_NONE, null, 0);
        assertThat(hwptId).as("out_hwpt_id").isPositive();
        return hwptId;
    }

    void testErrHwptAlloc(Errno errno, int deviceId, int ptId, int flags) {
        assertErrno(errno, () -> fd.hwptAlloc(flags, deviceId, ptId, Iommufd.HWPT_DATA_NONE, null, 0));
    }

    /** IOMMU_HWPT_ALLOC with a driver payload on a nest parent or a vIOMMU. {@return the nested HWPT's ID} */
    int testCmdHwptAllocNested(int deviceId, int parentId, int flags, int dataType, byte[] data) {
        int hwptId = fd.hwptAlloc(flags, deviceId, parentId, dataType, data, 0);
        assertThat(hwptId).as("out_hwpt_id").isPositive();
        return hwptId;
    }

    void testErrHwptAllocNested(Errno errno, int deviceId, int parentId, int flags, int dataType, byte[] data) {
        assertErrno(errno, () -> fd.hwptAlloc(flags, deviceId, parentId, dataType, data, 0));
    }

    /** IOMMU_HWPT_ALLOC of a HWPT whose I/O page faults go to {@code faultId}. {@return its ID} */
    int testCmdHwptAllocIopf(int deviceId, int parentId, int faultId, int flags, int dataType, byte[] data) {
        int hwptId = fd.hwptAlloc(flags, deviceId, parentId, dataType, data, faultId);
        assertThat(hwptId).as("out_hwpt_id").isPositive();
        return hwptId;
    }

    void testErrHwptAllocIopf(Errno errno, int deviceId, int parentId, int faultId, int flags, int dataType, byte[] data) {
        assertErrno(errno, () -> fd.hwptAlloc(flags, deviceId, parentId, dataType, data, faultId));
    }

    /** MD_CHECK_IOTLB: slot {@code slot} of mock nested HWPT {@code hwptId} holds {@code expected}. */
    void testCmdHwptCheckIotlb(int hwptId, int slot, int expected) {
        test.mdCheckIotlb(hwptId, slot, expected);
    }

    void testCmdHwptCheckIotlbAll(int hwptId, int expected) {
        for (int slot = 0; slot <= MOCK_NESTED_DOMAIN_IOTLB_ID_MAX; slot++) {
            testCmdHwptCheckIotlb(hwptId, slot, expected);
        }
    }

    /**
     * IOMMU_HWPT_INVALIDATE of {@code entryNum} entries of {@code entryLen} bytes from {@code reqs}
     * (null stands for a null data_uptr). {@return the entry_num written back: the entries handled}
     */
    int testCmdHwptInvalidate(int hwptId, SelftestStructs.InvReqs reqs, int dataType, int entryLen, int entryNum) {
        return fd.hwptInvalidate(hwptId, dataType, entryLen, entryNum, invalidateArray(reqs, entryLen, entryNum));
    }

    /** IOMMU_HWPT_INVALIDATE that must fail with {@code errno}. {@return the entry_num written back} */
    int testErrHwptInvalidate(Errno errno, int hwptId, SelftestStructs.InvReqs reqs, int dataType, int entryLen, int entryNum) {
        byte[] entries = invalidateArray(reqs, entryLen, entryNum);
        int[] written = {-1};
        assertThatThrownBy(() -> fd.hwptInvalidate(hwptId, dataType, entryLen, entryNum, entries))
                .isInstanceOfSatisfying(IommufdException.class, e -> {
                    assertThat(e.errno()).as(e.getMessage()).isEqualTo(errno);
                    assertThat(e.progress()).as("entry_num written back by: %s", e.getMessage()).isNotNegative();
                    written[0] = e.progress();
                });
        return written[0];
    }

    /** IOMMU_HWPT_INVALIDATE on a vIOMMU with the selftest's vIOMMU entries. {@return the entries handled} */
    int testCmdViommuInvalidate(int viommuId, SelftestStructs.InvReqs reqs, int entryLen, int entryNum) {
        return testCmdHwptInvalidate(viommuId, reqs, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen, entryNum);
    }

    int testErrViommuInvalidate(Errno errno, int viommuId, SelftestStructs.InvReqs reqs, int dataType, int entryLen, int entryNum) {
        return testErrHwptInvalidate(errno, viommuId, reqs, dataType, entryLen, entryNum);
    }

    private static byte[] invalidateArray(SelftestStructs.InvReqs reqs, int entryLen, int entryNum) {
        return reqs == null ? null : reqs.bytes(Integer.toUnsignedLong(entryLen) * Integer.toUnsignedLong(entryNum));
    }

    /** IOMMU_FAULT_QUEUE_ALLOC; {@return the FAULT object and its file} */
    Iommufd.FaultQueueAlloc testIoctlFaultAlloc() {
        Iommufd.FaultQueueAlloc fault = fd.faultQueueAlloc(0);
        assertThat(fault.faultId()).as("out_fault_id").isPositive();
        assertThat(fault.file()).as("out_fault_fd").isNotNull();
        return fault;
    }

    /** _test_cmd_trigger_iopf with its default PASID 1 (the kernel helper's). */
    void testCmdTriggerIopf(int deviceId, IommufdFile faultFile) {
        testCmdTriggerIopfPasid(deviceId, 1, faultFile);
    }

    /**
     * TRIGGER_IOPF on {@code deviceId} at {@code pasid} (grpid 2, read and write, address 0xdeadbeaf),
     * then reads the fault back from the queue's file, checks it is the one raised, and answers it
     * SUCCESS by its cookie.
     */
    void testCmdTriggerIopfPasid(int deviceId, int pasid, IommufdFile faultFile) {
        int perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
        test.triggerIopf(deviceId, pasid, 2, perm, 0xdeadbeafL);
        byte[] record = new byte[SelftestStructs.PGFAULT_BYTES];
        assertThat(faultFile.read(record)).as("bytes read from the fault file").isEqualTo(record.length);
        SelftestStructs.Pgfault fault = SelftestStructs.Pgfault.of(record);
        int flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE | (pasid != 0 ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0);
        assertThat(fault).as("the fault read back")
                .isEqualTo(new SelftestStructs.Pgfault(flags, deviceId, pasid, 2, perm, 0xdeadbeafL, 0, fault.cookie()));
        byte[] response = SelftestStructs.pageResponse(fault.cookie(), IOMMUFD_PAGE_RESP_SUCCESS);
        assertThat(faultFile.write(response)).as("bytes of the response written").isEqualTo(response.length);
    }

    /** IOMMU_VIOMMU_ALLOC with an optional selftest payload (null for none). {@return the ID and the payload written back} */
    Iommufd.ViommuAlloc testCmdViommuAlloc(int deviceId, int hwptId, int type, byte[] data) {
        Iommufd.ViommuAlloc viommu = fd.viommuAlloc(0, type, deviceId, hwptId, data);
        assertThat(viommu.viommuId()).as("out_viommu_id").isPositive();
        return viommu;
    }

    void testErrViommuAlloc(Errno errno, int deviceId, int hwptId, int type, byte[] data) {
        assertErrno(errno, () -> fd.viommuAlloc(0, type, deviceId, hwptId, data));
    }

    /** IOMMU_VDEVICE_ALLOC. {@return the vDEVICE's ID} */
    int testCmdVdeviceAlloc(int viommuId, int idevId, long virtId) {
        int vdevId = fd.vdeviceAlloc(viommuId, idevId, virtId);
        assertThat(vdevId).as("out_vdevice_id").isPositive();
        return vdevId;
    }

    void testErrVdeviceAlloc(Errno errno, int viommuId, int idevId, long virtId) {
        assertErrno(errno, () -> fd.vdeviceAlloc(viommuId, idevId, virtId));
    }

    /** IOMMU_HW_QUEUE_ALLOC. {@return the HW queue's ID} */
    int testCmdHwQueueAlloc(int viommuId, int type, int index, long baseAddr, long length) {
        int queueId = fd.hwQueueAlloc(0, viommuId, type, index, baseAddr, length);
        assertThat(queueId).as("out_hw_queue_id").isPositive();
        return queueId;
    }

    void testErrHwQueueAlloc(Errno errno, int viommuId, int type, int index, long baseAddr, long length) {
        assertErrno(errno, () -> fd.hwQueueAlloc(0, viommuId, type, index, baseAddr, length));
    }

    /** IOMMU_VEVENTQ_ALLOC. {@return the vEVENTQ object and its file} */
    Iommufd.VeventqAlloc testCmdVeventqAlloc(int viommuId, int type, int depth) {
        Iommufd.VeventqAlloc veventq = fd.veventqAlloc(0, viommuId, type, depth);
        assertThat(veventq.veventqId()).as("out_veventq_id").isPositive();
        return veventq;
    }

    void testErrVeventqAlloc(Errno errno, int viommuId, int type, int depth) {
        assertErrno(errno, () -> fd.veventqAlloc(0, viommuId, type, depth));
    }

    /** TRIGGER_VEVENT {@code count} times on device {@code deviceId}. */
    void testCmdTriggerVevents(int deviceId, int count) {
        for (int i = 0; i < count; i++) {
            test.triggerVevent(deviceId);
        }
    }

    /** DEV_CHECK_CACHE: cache slot {@code slot} of mock device {@code deviceId} holds {@code expected}. */
    void testCmdDevCheckCache(int deviceId, int slot, int expected) {
        test.devCheckCache(deviceId, slot, expected);
    }

    void testCmdDevCheckCacheAll(int deviceId, int expected) {
        for (int slot = 0; slot <= MOCK_DEV_CACHE_ID_MAX; slot++) {
            testCmdDevCheckCache(deviceId, slot, expected);
        }
    }

    /** mmap of the iommufd at {@code offset} must fail with {@code errno} (argument order of the kernel's helper). */
    void testErrMmap(Errno errno, long length, long offset) {
        assertErrno(errno, () -> fd.mmap(offset, length).close());
    }

    /** {@return the DEVICE object behind selftest object {@code stdevId} (MOCK_DOMAIN's out_idev_id)} */
    int idevIdOf(int stdevId) {
        return ctx().objects.get(stdevId, ObjectType.SELFTEST, SelftestDevice.class).idev.id();
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

    /** HWPT_ALLOC with the mock's {@code iommu_hwpt_selftest} payload choosing the page-table type. */
    int testCmdHwptAllocIommupt(int devId, int ptId, int flags, int pagetableType) {
        byte[] data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(pagetableType).array();
        return fd.hwptAlloc(flags, devId, ptId, MockIommuDriver.HWPT_DATA_SELFTEST, data, 0);
    }

    /**
     * GET_HW_INFO asking for {@code dataType} (INPUT_TYPE is set unless it is DEFAULT, as the kernel
     * helper does), checked the way the kernel helper checks it: the mock's type and struct come back.
     */
    Iommufd.HwInfo testCmdGetHwInfo(int devId, int dataType) {
        int flags = dataType == DriverHwInfo.TYPE_DEFAULT ? 0 : Iommufd.HW_INFO_FLAG_INPUT_TYPE;
        Iommufd.HwInfo info = fd.getHwInfo(devId, flags, dataType);
        assertThat(info.dataType()).as("out_data_type").isEqualTo(MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        ByteBuffer data = ByteBuffer.wrap(info.data()).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(data.remaining()).as("sizeof(struct iommu_test_hw_info)").isEqualTo(8);
        assertThat(data.getInt(0)).as("iommu_test_hw_info.flags").isZero();
        assertThat(data.getInt(4)).as("iommu_test_hw_info.test_reg").isEqualTo(MockIommuDriver.HW_INFO_SELFTEST_REGVAL);
        return info;
    }

    void testErrGetHwInfo(Errno errno, int devId, int dataType) {
        int flags = dataType == DriverHwInfo.TYPE_DEFAULT ? 0 : Iommufd.HW_INFO_FLAG_INPUT_TYPE;
        assertErrno(errno, () -> fd.getHwInfo(devId, flags, dataType));
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
        fd.hwptSetDirtyTracking(hwptId, enabled ? Iommufd.DIRTY_TRACKING_ENABLE : 0);
    }

    /** HWPT_GET_DIRTY_BITMAP; {@return the bits the kernel would OR into the caller's bitmap} */
    DirtyBitmap testCmdGetDirtyBitmap(int hwptId, long length, long iova, long pageSize, int flags) {
        DirtyBitmap bitmap = fd.hwptGetDirtyBitmap(hwptId, flags, iova, length, pageSize);
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
        IommuPagingDomain domain = ctx().objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class).domain;
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
        return (MockDevice) ctx().objects.get(stdevId, ObjectType.SELFTEST, SelftestDevice.class).idev.device;
    }

    // ---- the selftest's dma-buf exporter (DMABUF_GET, DMABUF_REVOKE) and IOAS_MAP_FILE of a dma-buf -----------

    /** DMABUF_GET; the kernel hands back an fd, the typed API the buffer itself. */
    DmaBuf testCmdGetDmabuf(long length) {
        // On 7.3.4 DMABUF_GET also answers 0 instead of the fd (refkernel README), so only fd-level tests could run.
        assumeEmulated("dma-buf objects (a kernel dma-buf is an fd)");
        DmaBuf buf = test.dmabufGet(length);
        assertThat(buf.sizeBytes()).as("dma-buf size for a request of 0x%x bytes", length).isGreaterThanOrEqualTo(length);
        return buf;
    }

    void testCmdRevokeDmabuf(DmaBuf buf, boolean revoked) {
        test.dmabufRevoke(buf, revoked);
    }

    /** IOAS_MAP_FILE of [start, +length) of a dma-buf at an automatic IOVA, read and write. {@return the IOVA} */
    long testIoctlIoasMapFileId(int ioasId, DmaBuf buf, long start, long length) {
        return fd.ioasMapFile(ioasId, Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, buf, start, length, 0);
    }

    void testErrIoctlIoasMapFileId(Errno errno, int ioasId, DmaBuf buf, long start, long length) {
        assertErrno(errno, () -> testIoctlIoasMapFileId(ioasId, buf, start, length));
    }

    /** IOAS_MAP_FILE of a dma-buf exactly at {@code iova}, read and write. */
    void testIoctlIoasMapFixedFileId(int ioasId, DmaBuf buf, long start, long length, long iova) {
        assertThat(fd.ioasMapFile(ioasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE | Iommufd.MAP_READABLE, buf, start, length, iova))
                .isEqualTo(iova);
    }

    /**
     * What the dev tree's MD_CHECK_DMABUF (test op 24, not in mainline) checks, asked of the HWPT's
     * mock domain directly: every mock page of [iova, +length) translates to the dma-buf's memory at
     * {@code offset} onwards. Like the op, it refuses ranges that are not whole mock pages or that
     * leave the buffer.
     */
    void testCmdCheckDmabuf(int hwptId, DmaBuf buf, long iova, long length, long offset) {
        IommuPagingDomain domain = ctx().objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class).domain;
        long granule = Long.lowestOneBit(domain.pageSizes());
        assertThat((iova | length | offset) & (granule - 1)).as("check_dmabuf alignment to 0x%x", granule).isZero();
        assertThat(offset + length).as("check_dmabuf range end within the dma-buf").isLessThanOrEqualTo(buf.sizeBytes());
        for (long off = 0; off < length; off += granule) {
            assertThat(domain.iovaToPhys(iova + off)).as("hwpt %d iova 0x%x vs dma-buf offset 0x%x", hwptId, iova + off, offset + off)
                    .isEqualTo(buf.physicalAddress(offset + off));
        }
    }

    /** No mock page of [iova, +length) translates through the HWPT's domain (what a revoked dma-buf leaves). */
    void checkMockIovaUnmapped(int hwptId, long iova, long length) {
        IommuPagingDomain domain = ctx().objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class).domain;
        long granule = Long.lowestOneBit(domain.pageSizes());
        for (long off = 0; off < length; off += granule) {
            assertThat(domain.iovaToPhys(iova + off)).as("hwpt %d iova 0x%x", hwptId, iova + off).isEqualTo(PageTable.NOT_MAPPED);
        }
    }
}
