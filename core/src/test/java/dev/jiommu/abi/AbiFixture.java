package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.mem.PhysicalMemory;
import org.junit.jupiter.api.AfterEach;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A caller talking to a context through bytes: its memory (the struct page at {@link #ARG}, a
 * 64 KiB {@link #BUFFER} for arrays and payloads, a {@link #MAP_VA} region to map, a read-only page,
 * nothing at {@link #UNMAPPED}), its fd table, and the decoder. The typed API stays at hand
 * ({@link #ctx}) to set the stage and check the outcome. Teardown closes the context and checks that
 * nothing is left pinned.
 */
abstract class AbiFixture {
    static final long PAGE = 4096;
    static final long ARG = 0x10_0000;
    static final long BUFFER = 0x40_0000;
    static final long BUFFER_BYTES = 0x1_0000;
    /** A read-only page: reads work, copy_to_user faults. */
    static final long READ_ONLY = 0x80_0000;
    static final long MAP_VA = 0x100_0000;
    static final long MAP_BYTES = 1L << 20;
    static final long UNMAPPED = 0x7000_0000_0000L;
    static final long APERTURE_START = MockIommuDriver.APERTURE_START;

    final PhysicalMemory memory = PhysicalMemory.create(64L << 20);
    final CallerMemory caller = new CallerMemory(memory);
    final MockIommuDriver mock = new MockIommuDriver(memory);
    final IommufdContext ctx;
    final IommufdSelftest selftest;
    final LocalFdTable fds = new LocalFdTable();
    final AbiDecoder decoder;

    AbiFixture() {
        caller.register(ARG, PAGE, true);
        caller.register(BUFFER, BUFFER_BYTES, true);
        caller.register(READ_ONLY, PAGE, false);
        caller.register(MAP_VA, MAP_BYTES, true);
        ctx = new IommufdContext(caller, mock);
        selftest = ctx.selftest();
        decoder = new AbiDecoder(ctx, caller, fds, ctx.accounting());
    }

    @AfterEach
    void closeLeavesNothingPinned() {
        ctx.close();
        assertThat(caller.pinnedPages()).as("pinned pages after close").isZero();
    }

    static ByteBuffer struct(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    static long err(Errno errno) {
        return -errno.number();
    }

    /** Writes {@code struct} at {@link #ARG} and runs the ioctl on it. */
    long call(int cmd, ByteBuffer struct) {
        return callAt(cmd, ARG, struct);
    }

    long callAt(int cmd, long arg, ByteBuffer struct) {
        caller.poke(arg, struct.array());
        return decoder.ioctl(cmd, arg);
    }

    /** Runs the ioctl on a struct in the read-only page: the answer cannot be written back. */
    long callReadOnly(int cmd, ByteBuffer struct) {
        return callAt(cmd, READ_ONLY, struct);
    }

    /** {@return the struct at {@link #ARG} as the call left it} */
    ByteBuffer result(int bytes) {
        return read(ARG, bytes);
    }

    ByteBuffer read(long va, int bytes) {
        return ByteBuffer.wrap(caller.read(va, bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    void write(long va, ByteBuffer bytes) {
        caller.write(va, bytes.array());
    }

    /** Fills [va, va + lengthBytes) with {@code value}. */
    void fill(long va, int lengthBytes, int value) {
        byte[] bytes = new byte[lengthBytes];
        java.util.Arrays.fill(bytes, (byte) value);
        caller.write(va, bytes);
    }
}
