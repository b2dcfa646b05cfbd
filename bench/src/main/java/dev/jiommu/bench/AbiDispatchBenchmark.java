package dev.jiommu.bench;

import dev.jiommu.abi.AbiDecoder;
import dev.jiommu.abi.IoctlNumbers;
import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;

/**
 * What the byte path adds to a call: IOAS_MAP + IOAS_UNMAP of 4 KiB, and HWPT_INVALIDATE of 64
 * mock entries, once through {@link AbiDecoder} (the struct read from the caller's memory, checked,
 * dispatched, the answer written back) and once as the typed call alone, in the same run. The
 * difference of each pair is the ABI's cost.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class AbiDispatchBenchmark {
    private static final long STRUCTS_VA = 0x10_0000;
    private static final long BUFFER_VA = 0x7f00_0000_0000L;
    private static final long IOVA = 1L << 30;
    private static final long MAP_ARG = STRUCTS_VA;
    private static final long UNMAP_ARG = STRUCTS_VA + 0x100;
    private static final long INVALIDATE_ARG = STRUCTS_VA + 0x200;
    private static final long ENTRIES_VA = STRUCTS_VA + 0x1000;
    private static final int ENTRIES = 64;
    private static final int INVALIDATE_SELFTEST = 0xdeadbeef;

    private PhysicalMemory memory;
    private IommufdContext ctx;
    private AbiDecoder decoder;
    private RegisteredUserMemory user;
    private int ioas;
    private int nested;
    private byte[] entries;

    @Setup(Level.Trial)
    public void setUp() {
        memory = PhysicalMemory.create(256L << 20);
        user = new RegisteredUserMemory(memory);
        user.register(STRUCTS_VA, 0x10000, 4096, true);
        user.register(BUFFER_VA, 4096, 4096, true);
        ctx = new IommufdContext(user, new MockIommuDriver(memory));
        decoder = new AbiDecoder(ctx, user);
        ioas = ctx.ioasAlloc();
        var md = ctx.selftest().mockDomain(ioas);
        int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        nested = ctx.hwptAlloc(0, md.idevId(), parent, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0);
        int flags = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
        byte[] mapStruct = le(40).putInt(40).putInt(flags).putInt(ioas).putInt(0).putLong(BUFFER_VA).putLong(4096).putLong(IOVA).array();
        byte[] unmapStruct = le(24).putInt(24).putInt(ioas).putLong(IOVA).putLong(4096).array();
        ByteBuffer e = le(ENTRIES * 8);
        for (int i = 0; i < ENTRIES; i++) {
            e.putInt(0).putInt(i & 3);
        }
        entries = e.array();
        user.write(ENTRIES_VA, entries);
        byte[] invalidateStruct = le(32).putInt(32).putInt(nested).putLong(ENTRIES_VA).putInt(INVALIDATE_SELFTEST).putInt(8)
                .putInt(ENTRIES).putInt(0).array();
        // Written once: what each call writes back (the fixed IOVA, the length unmapped, entry_num = 64)
        // equals what was there, so the structs stay valid and the loops time the decoder alone.
        user.write(MAP_ARG, mapStruct);
        user.write(UNMAP_ARG, unmapStruct);
        user.write(INVALIDATE_ARG, invalidateStruct);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ctx.close();
        memory.close();
    }

    private static ByteBuffer le(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** IOAS_MAP + IOAS_UNMAP of one page through the decoder. */
    @Benchmark
    public long mapUnmapThroughAbi() {
        long a = decoder.ioctl(IoctlNumbers.IOAS_MAP, MAP_ARG);
        return a + decoder.ioctl(IoctlNumbers.IOAS_UNMAP, UNMAP_ARG);
    }

    /** Baseline: the same two calls on the typed API. */
    @Benchmark
    public long baselineMapUnmapTyped() {
        ctx.ioasMap(ioas, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, BUFFER_VA, 4096, IOVA);
        return ctx.ioasUnmap(ioas, IOVA, 4096);
    }

    /** HWPT_INVALIDATE of 64 entries through the decoder (entries read from the caller's memory). */
    @Benchmark
    public long invalidate64ThroughAbi() {
        return decoder.ioctl(IoctlNumbers.HWPT_INVALIDATE, INVALIDATE_ARG);
    }

    /** The typed HWPT_INVALIDATE of the same 64 entries. */
    @Benchmark
    public int invalidate64Typed() {
        return ctx.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, ENTRIES, entries);
    }
}
