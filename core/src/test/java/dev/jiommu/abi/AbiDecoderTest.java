package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** The dispatcher's rules (iommufd-uapi.md §1.4) through bytes, for every command of the table. */
class AbiDecoderTest extends AbiFixture {
    @Test
    void ioasAllocThroughBytesReturnsTheIdInTheStruct() {
        assertThat(call(IoctlNumbers.IOAS_ALLOC, struct(12).putInt(12))).isZero();
        assertThat(result(12).getInt(8)).isEqualTo(1);
        assertThat(call(IoctlNumbers.IOAS_ALLOC, struct(12).putInt(12).putInt(1))).isEqualTo(-Errno.EOPNOTSUPP.number());
    }

    /**
     * The kernel's TEST_F(iommufd, cmd_length) rule, for every row of the table: size = min − 1 is
     * EINVAL; size = sizeof + 1 with a non-zero trailing byte is E2BIG; with a zero one it behaves
     * exactly like size = sizeof (the struct otherwise all zero).
     */
    @Test
    void everyCommandFollowsTheSizeRules() {
        ctx.ioasAlloc(); // so RLIMIT_MODE SET of the all-zero OPTION is EBUSY, not a change of mode
        for (IoctlOp op : IoctlTable.standard().ops()) {
            int min = (int) op.minSizeBytes();
            int size = (int) op.sizeBytes();
            ByteBuffer cmd = struct(size + 1).putInt(0, min - 1).put(size, (byte) 0xff);
            assertThat(call(op.cmd(), cmd)).as("%s size min-1", op.name()).isEqualTo(err(Errno.EINVAL));
            cmd.putInt(0, size + 1);
            assertThat(call(op.cmd(), cmd)).as("%s non-zero tail", op.name()).isEqualTo(err(Errno.E2BIG));
            cmd.putInt(0, size);
            long known = call(op.cmd(), cmd);
            cmd.putInt(0, size + 1).put(size, (byte) 0);
            long longer = call(op.cmd(), cmd);
            if (known < 0) {
                assertThat(longer).as("%s zero tail, like size = sizeof", op.name()).isEqualTo(known);
            } else {
                assertThat(longer).as("%s zero tail succeeds like size = sizeof", op.name()).isGreaterThanOrEqualTo(0);
            }
        }
    }

    /** Port of iommufd.c TEST_F(iommufd, cmd_ex_fail): a 64-bit "future" field after DESTROY's struct. */
    @Test
    void cmd_ex_fail() {
        ByteBuffer cmd = struct(16).putInt(0, 16).putInt(4, 0);
        assertThat(call(IoctlNumbers.DESTROY, cmd)).as("bad id, longer command").isEqualTo(err(Errno.ENOENT));
        cmd.putLong(8, 1);
        assertThat(call(IoctlNumbers.DESTROY, cmd)).as("future area non-zero").isEqualTo(err(Errno.E2BIG));
        cmd.putInt(0, 8);
        assertThat(call(IoctlNumbers.DESTROY, cmd)).as("the original command works").isEqualTo(err(Errno.ENOENT));
        cmd.putInt(0, 7);
        assertThat(call(IoctlNumbers.DESTROY, cmd)).as("short command").isEqualTo(err(Errno.EINVAL));
    }

    /** The tail is read page by page: a non-zero byte before an unmapped page is E2BIG, an unmapped page first EFAULT. */
    @Test
    void aTailRunningIntoUnmappedMemoryFaultsUnlessANonZeroByteComesFirst() {
        long arg = ARG + PAGE - 8; // the struct fills the page's last 8 bytes; the tail runs into the unmapped next page
        ByteBuffer cmd = struct(8).putInt(0, 64).putInt(4, 0);
        assertThat(callAt(IoctlNumbers.DESTROY, arg, cmd)).isEqualTo(err(Errno.EFAULT));
        long tailOnly = BUFFER + BUFFER_BYTES - 12;
        ByteBuffer longer = struct(12).putInt(0, 64).putInt(4, 0).putInt(8, 1);
        assertThat(callAt(IoctlNumbers.DESTROY, tailOnly, longer)).isEqualTo(err(Errno.E2BIG));
    }

    @Test
    void aLongStructWithAZeroTailBehavesLikeTheKnownSize() {
        long known = call(IoctlNumbers.IOAS_ALLOC, struct(16).putInt(12));
        long longer = call(IoctlNumbers.IOAS_ALLOC, struct(16).putInt(13));
        assertThat(known).isZero();
        assertThat(longer).isZero();
        assertThat(result(12).getInt(8)).isEqualTo(2);
    }

    @Test
    void badPointersAndUnknownNumbersAreErrnoNotExceptions() {
        assertThat(decoder.ioctl(IoctlNumbers.DESTROY, 0)).isEqualTo(-Errno.EFAULT.number());
        assertThat(call(IoctlNumbers.io(0x9f), struct(8).putInt(8))).isEqualTo(-Errno.ENOTTY.number());
        int writeEncoded = IoctlNumbers.DESTROY | (1 << 30) | (8 << 16);
        assertThat(call(writeEncoded, struct(8).putInt(8))).isEqualTo(-Errno.ENOTTY.number());
        assertThat(call(IoctlNumbers.io(0x6f), struct(8).putInt(8))).as("a VFIO number iommufd does not answer").isEqualTo(-Errno.ENOTTY.number());
        assertThat(call(IoctlNumbers.VFIO_IOMMU_DIRTY_PAGES, struct(8).putInt(8))).isEqualTo(-Errno.ENOTTY.number());
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(77))).isEqualTo(-Errno.ENOENT.number());
    }

    @Test
    void iovaRangesWritesBackTheCountThenFailsWithEmsgsizeWhenTheArrayIsShort() {
        int ioas = ctx.ioasAlloc();
        ctx.selftest().addReserved(ioas, 0x10000, 0x1000);
        ByteBuffer s = struct(32).putInt(32).putInt(ioas).putInt(1).putInt(0).putLong(BUFFER).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_IOVA_RANGES, s)).isEqualTo(-Errno.EMSGSIZE.number());
        assertThat(result(32).getInt(8)).isEqualTo(2);
        assertThat(result(32).getLong(24)).isEqualTo(1);
        ByteBuffer ranges = read(BUFFER, 32);
        assertThat(ranges.getLong(0)).isZero();
        assertThat(ranges.getLong(8)).isEqualTo(0xffffL);
        assertThat(ranges.getLong(16)).as("entries past the capacity stay untouched").isZero();
        s = struct(32).putInt(32).putInt(ioas).putInt(2).putInt(0).putLong(BUFFER).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_IOVA_RANGES, s)).isZero();
        ranges = read(BUFFER, 32);
        assertThat(ranges.getLong(16)).isEqualTo(0x11000L);
        assertThat(ranges.getLong(24)).isEqualTo(-1L);
    }

    @Test
    void mapAndUnmapThroughBytes() {
        int ioas = ctx.ioasAlloc();
        ctx.selftest().mockDomain(ioas);
        int flags = Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
        ByteBuffer map = struct(40).putInt(40).putInt(flags).putInt(ioas).putInt(0).putLong(BUFFER).putLong(0x4000).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_MAP, map)).isZero();
        long iova = result(40).getLong(32);
        assertThat(iova).isEqualTo(MockIommuDriver.APERTURE_START);
        assertThat(caller.pinCount(BUFFER)).isEqualTo(1);
        ByteBuffer reserved = struct(40).putInt(40).putInt(flags).putInt(ioas).putInt(1).putLong(BUFFER).putLong(0x4000).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_MAP, reserved)).isEqualTo(-Errno.EOPNOTSUPP.number());
        ByteBuffer unmap = struct(24).putInt(24).putInt(ioas).putLong(iova).putLong(0x4000);
        assertThat(call(IoctlNumbers.IOAS_UNMAP, unmap)).isZero();
        assertThat(result(24).getLong(16)).isEqualTo(0x4000);
        assertThat(caller.pinCount(BUFFER)).isZero();
        assertThat(call(IoctlNumbers.IOAS_UNMAP, struct(24).putInt(24).putInt(ioas).putLong(0).putLong(-1L))).isZero();
    }
}
