package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.MemoryFile;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** The object and IOAS commands through bytes: encode, decode, run against the mock, read the answer. */
class AbiIoasCommandsTest extends AbiFixture {
    private static final int RW = Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    private static ByteBuffer allowIovas(int ioas, int count, long array) {
        return struct(24).putInt(24).putInt(ioas).putInt(count).putInt(0).putLong(array);
    }

    private static ByteBuffer map(int flags, int ioas, long va, long length, long iova) {
        return struct(40).putInt(40).putInt(flags).putInt(ioas).putInt(0).putLong(va).putLong(length).putLong(iova);
    }

    private static ByteBuffer mapFile(int flags, int ioas, int fd, long start, long length, long iova) {
        return struct(40).putInt(40).putInt(flags).putInt(ioas).putInt(fd).putLong(start).putLong(length).putLong(iova);
    }

    private static ByteBuffer option(int optionId, int op, int reserved, int objectId, long value) {
        return struct(24).putInt(24).putInt(optionId).putShort((short) op).putShort((short) reserved).putInt(objectId).putLong(value);
    }

    @Test
    void destroyThroughBytes() {
        int ioas = ctx.ioasAlloc();
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(ioas))).isZero();
        assertThat(ctx.objectCount()).isZero();
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(ioas))).isEqualTo(err(Errno.ENOENT));
    }

    @Test
    void ioasAllocWhoseAnswerCannotBeWrittenLeavesNoIoas() {
        assertThat(callReadOnly(IoctlNumbers.IOAS_ALLOC, struct(12).putInt(12))).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).as("aborted, as the kernel aborts an object the caller never heard of").isZero();
    }

    @Test
    void allowIovasSteersAutomaticAllocation() {
        int ioas = ctx.ioasAlloc();
        selftest.mockDomain(ioas);
        write(BUFFER, struct(32).putLong(0x2000_0000L).putLong(0x2fff_ffffL).putLong(0x4000_0000L).putLong(0x4fff_ffffL));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 2, BUFFER))).isZero();
        assertThat(call(IoctlNumbers.IOAS_MAP, map(RW, ioas, MAP_VA, PAGE, 0))).isZero();
        assertThat(result(40).getLong(32)).as("automatic IOVA inside the allowed list").isEqualTo(0x2000_0000L);
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 0, 0))).as("0 ranges clears the list").isZero();
    }

    @Test
    void allowIovasChecksTheIoasFirstThenEachRangeInOrder() {
        int ioas = ctx.ioasAlloc();
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 1, BUFFER).putInt(12, 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas + 7, 1, UNMAPPED))).as("the IOAS before the array")
                .isEqualTo(err(Errno.ENOENT));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 1, UNMAPPED))).isEqualTo(err(Errno.EFAULT));
        // The last range of BUFFER is valid and the next one unmapped: EFAULT.
        long lastSlot = BUFFER + BUFFER_BYTES - 16;
        write(lastSlot, struct(16).putLong(0x1000).putLong(0x1fff));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 2, lastSlot))).isEqualTo(err(Errno.EFAULT));
        // A one-byte range before the unmapped one: EINVAL wins, as the kernel loads in order.
        write(lastSlot, struct(16).putLong(0x1000).putLong(0x1000));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 2, lastSlot))).isEqualTo(err(Errno.EINVAL));
        write(BUFFER, struct(32).putLong(0x1000).putLong(0x2fff).putLong(0x2000).putLong(0x3fff));
        assertThat(call(IoctlNumbers.IOAS_ALLOW_IOVAS, allowIovas(ioas, 2, BUFFER))).as("overlap").isEqualTo(err(Errno.EINVAL));
    }

    @Test
    void copySharesThePagesAndWritesTheDestinationIova() {
        int src = ctx.ioasAlloc();
        int dst = ctx.ioasAlloc();
        selftest.mockDomain(src);
        selftest.mockDomain(dst);
        long srcIova = ctx.ioasMap(src, RW, MAP_VA, 4 * PAGE, 0);
        ByteBuffer copy = struct(40).putInt(40).putInt(RW).putInt(dst).putInt(src).putLong(4 * PAGE).putLong(0).putLong(srcIova);
        assertThat(call(IoctlNumbers.IOAS_COPY, copy)).isZero();
        long dstIova = result(40).getLong(24);
        assertThat(dstIova).isEqualTo(APERTURE_START);
        assertThat(caller.pinCount(MAP_VA)).as("one pin, shared by both IOASes").isEqualTo(1);
        assertThat(ctx.ioasUnmap(dst, dstIova, 4 * PAGE)).isEqualTo(4 * PAGE);
        copy.putInt(4, 1 << 3);
        assertThat(call(IoctlNumbers.IOAS_COPY, copy)).isEqualTo(err(Errno.EOPNOTSUPP));
    }

    @Test
    void mapFileOfAMemfdByItsFd() {
        MemoryFile memfd = new MemoryFile(memory, "memfd", 4 * PAGE, true);
        int fd = fds.install(memfd);
        int ioas = ctx.ioasAlloc();
        selftest.mockDomain(ioas);
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, fd, 0, 4 * PAGE, 0))).isZero();
        long iova = result(40).getLong(32);
        assertThat(iova).isEqualTo(APERTURE_START);
        assertThat(memfd.pinCount(0)).isEqualTo(1);
        assertThat(ctx.ioasUnmap(ioas, iova, 4 * PAGE)).isEqualTo(4 * PAGE);
        memfd.close();
    }

    /** The fd is looked at last (iopt_map_file_pages): flags, the IOAS and the range come first. */
    @Test
    void mapFileResolvesTheFdAfterTheOtherChecks() {
        int ioas = ctx.ioasAlloc();
        int notOpen = 77;
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, notOpen, 0, PAGE, 0))).isEqualTo(err(Errno.EBADF));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW | 1 << 5, ioas, notOpen, 0, PAGE, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, notOpen, 0, -1L, 0))).isEqualTo(err(Errno.EOVERFLOW));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(Iommufd.MAP_FIXED_IOVA, ioas, notOpen, 0, PAGE, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas + 1, notOpen, 0, PAGE, 0))).isEqualTo(err(Errno.ENOENT));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, notOpen, 0, 0, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, notOpen, -PAGE, 2 * PAGE, 0))).isEqualTo(err(Errno.EOVERFLOW));
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, -1, 0, PAGE, 0))).isEqualTo(err(Errno.EBADF));
        int faultFd = fds.install(ctx.faultQueueAlloc(0).file());
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile(RW, ioas, faultFd, 0, PAGE, 0))).as("an fd that is no memory")
                .isEqualTo(err(Errno.EINVAL));
    }

    @Test
    void optionWritesBackOnlyVal64() {
        int ioas = ctx.ioasAlloc();
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, IoctlTable.OPTION_OP_GET, 0, ioas, 0))).isZero();
        assertThat(result(24).getLong(16)).isEqualTo(1);
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, IoctlTable.OPTION_OP_SET, 0, ioas, 0))).isZero();
        assertThat(ctx.optionGet(Iommufd.OPTION_HUGE_PAGES, ioas)).isZero();
        // A 32-byte struct: bytes past val64 are the caller's and stay as they were (zero, or E2BIG).
        ByteBuffer longer = struct(32).putInt(32).putInt(Iommufd.OPTION_HUGE_PAGES).putShort((short) IoctlTable.OPTION_OP_GET)
                .putShort((short) 0).putInt(ioas).putLong(77);
        assertThat(call(IoctlNumbers.OPTION, longer)).isZero();
        assertThat(result(32).getLong(16)).isZero();
        assertThat(result(32).getInt(0)).as("size untouched").isEqualTo(32);
        // The val64 of a failed call stays the caller's.
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, IoctlTable.OPTION_OP_SET, 0, ioas, 5)))
                .isEqualTo(err(Errno.EINVAL));
        assertThat(result(24).getLong(16)).isEqualTo(5);
    }

    @Test
    void optionRefusesReservedUnknownOptionsAndOpsInTheKernelsOrder() {
        int ioas = ctx.ioasAlloc();
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, IoctlTable.OPTION_OP_GET, 1, ioas, 0)))
                .isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.OPTION, option(9, IoctlTable.OPTION_OP_GET, 0, ioas, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, 7, 0, ioas + 5, 0))).as("the object before the op")
                .isEqualTo(err(Errno.ENOENT));
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_HUGE_PAGES, 7, 0, ioas, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_RLIMIT_MODE, IoctlTable.OPTION_OP_GET, 0, 0, 0))).isZero();
        assertThat(call(IoctlNumbers.OPTION, option(Iommufd.OPTION_RLIMIT_MODE, 2, 0, 0, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
    }

    @Test
    void vfioIoasSetsGetsAndClearsTheCompatIoas() {
        int ioas = ctx.ioasAlloc();
        ByteBuffer get = struct(12).putInt(12).putInt(0).putShort((short) Iommufd.VFIO_IOAS_GET).putShort((short) 0);
        assertThat(call(IoctlNumbers.VFIO_IOAS, get)).isEqualTo(err(Errno.ENODEV));
        ByteBuffer set = struct(12).putInt(12).putInt(ioas).putShort((short) Iommufd.VFIO_IOAS_SET).putShort((short) 0);
        assertThat(call(IoctlNumbers.VFIO_IOAS, set)).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOAS, get)).isZero();
        assertThat(result(12).getInt(4)).isEqualTo(ioas);
        ByteBuffer clear = struct(12).putInt(12).putInt(0).putShort((short) Iommufd.VFIO_IOAS_CLEAR).putShort((short) 0);
        assertThat(call(IoctlNumbers.VFIO_IOAS, clear)).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOAS, get)).isEqualTo(err(Errno.ENODEV));
        assertThat(call(IoctlNumbers.VFIO_IOAS, set.putShort(10, (short) 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.VFIO_IOAS, struct(12).putInt(12).putInt(0).putShort((short) 3))).isEqualTo(err(Errno.EOPNOTSUPP));
    }

    /** The decoder's caller is "the calling process": the charges of file-backed areas move to its accounting. */
    @Test
    void changeProcessMovesTheChargesToTheDecodersProcess() {
        PinAccounting otherProcess = new PinAccounting(Long.MAX_VALUE);
        AbiDecoder other = new AbiDecoder(ctx, caller, fds, otherProcess);
        MemoryFile memfd = new MemoryFile(memory, "memfd", 4 * PAGE, true);
        int ioas = ctx.ioasAlloc();
        selftest.mockDomain(ioas);
        long iova = ctx.ioasMapFile(ioas, RW, memfd, 0, 4 * PAGE, 0);
        long pinned = ctx.accounting().pinnedPages();
        assertThat(pinned).isEqualTo(4);
        caller.write(ARG, struct(8).putInt(8).putInt(1).array());
        assertThat(other.ioctl(IoctlNumbers.IOAS_CHANGE_PROCESS, ARG)).isEqualTo(err(Errno.EOPNOTSUPP));
        caller.write(ARG, struct(8).putInt(8).array());
        assertThat(other.ioctl(IoctlNumbers.IOAS_CHANGE_PROCESS, ARG)).isZero();
        assertThat(otherProcess.pinnedPages()).isEqualTo(pinned);
        ctx.ioasMap(ioas, RW, MAP_VA, PAGE, 0);
        assertThat(call(IoctlNumbers.IOAS_CHANGE_PROCESS, struct(8).putInt(8))).as("an IOAS_MAP area").isEqualTo(err(Errno.EINVAL));
        ctx.ioasUnmap(ioas, 0, Iommufd.UNMAP_ALL_LENGTH);
        assertThat(otherProcess.pinnedPages()).isZero();
        assertThat(iova).isEqualTo(APERTURE_START);
        memfd.close();
    }
}
