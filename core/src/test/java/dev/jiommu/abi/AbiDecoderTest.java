package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/** The dispatcher's rules (iommufd-uapi.md §1.4) and the commands decoded so far, through bytes. */
class AbiDecoderTest {
    private static final long ARG = 0x10_0000;
    private static final long BUFFER = 0x40_0000;

    private final PhysicalMemory memory = PhysicalMemory.create(64L << 20);
    private final RegisteredUserMemory caller = new RegisteredUserMemory(memory);
    private final IommufdContext ctx;
    private final AbiDecoder decoder;

    AbiDecoderTest() {
        caller.register(ARG, 0x1000, 0x1000, true);
        caller.register(BUFFER, 0x10000, 0x1000, true);
        ctx = new IommufdContext(caller, new MockIommuDriver(memory));
        decoder = new AbiDecoder(ctx, caller);
    }

    @AfterEach
    void close() {
        ctx.close();
        assertThat(caller.pinnedPages()).isZero();
    }

    private static ByteBuffer struct(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private long call(int cmd, ByteBuffer struct) {
        caller.write(ARG, struct.array());
        return decoder.ioctl(cmd, ARG);
    }

    private ByteBuffer result(int bytes) {
        return ByteBuffer.wrap(caller.read(ARG, bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void ioasAllocThroughBytesReturnsTheIdInTheStruct() {
        assertThat(call(IoctlNumbers.IOAS_ALLOC, struct(12).putInt(12))).isZero();
        assertThat(result(12).getInt(8)).isEqualTo(1);
        assertThat(call(IoctlNumbers.IOAS_ALLOC, struct(12).putInt(12).putInt(1))).isEqualTo(-Errno.EOPNOTSUPP.number());
    }

    /** The kernel's cmd_length rule for every decoded command: short EINVAL, long zero tail fine, long non-zero tail E2BIG. */
    @Test
    void everyCommandFollowsTheSizeRules() {
        ctx.ioasAlloc();
        for (IoctlOp op : IoctlTable.standard().ops()) {
            int min = (int) op.minSizeBytes();
            int size = (int) op.sizeBytes();
            ByteBuffer shortStruct = struct(size + 8).putInt(min - 1);
            assertThat(call(op.cmd(), shortStruct)).as("%s size min-1", op.name()).isEqualTo(-Errno.EINVAL.number());
            ByteBuffer longTail = struct(size + 8).putInt(size + 1);
            longTail.put(size, (byte) 0xaa);
            assertThat(call(op.cmd(), longTail)).as("%s non-zero tail", op.name()).isEqualTo(-Errno.E2BIG.number());
        }
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
        assertThat(call(IoctlNumbers.io(0x70), struct(8).putInt(8))).isEqualTo(-Errno.ENOTTY.number());
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
        ByteBuffer ranges = ByteBuffer.wrap(caller.read(BUFFER, 32)).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(ranges.getLong(0)).isZero();
        assertThat(ranges.getLong(8)).isEqualTo(0xffffL);
        assertThat(ranges.getLong(16)).as("entries past the capacity stay untouched").isZero();
        s = struct(32).putInt(32).putInt(ioas).putInt(2).putInt(0).putLong(BUFFER).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_IOVA_RANGES, s)).isZero();
        ranges = ByteBuffer.wrap(caller.read(BUFFER, 32)).order(ByteOrder.LITTLE_ENDIAN);
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
