package dev.jiommu.bench;

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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * IOAS_MAP + IOAS_UNMAP of registered user memory through the typed API, with one mock domain
 * attached, so every call pins the pages, writes the mock page table, and takes it all back.
 * Throughput is {@code lengthBytes / (ns/op)}: bytes per nanosecond are GB/s.
 *
 * <p>Baseline, same run: copying {@code lengthBytes} between two off-heap segments, what moving the
 * data would cost instead of mapping it.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class IoasMapBenchmark {
    private static final long USER_VA = 0x7f00_0000_0000L;
    private static final long IOVA = 1L << 30;

    @Param({"4096", "2097152", "1073741824"})
    public long lengthBytes;

    private PhysicalMemory memory;
    private IommufdContext ctx;
    private int ioas;
    private Arena arena;
    private MemorySegment copySource;
    private MemorySegment copyTarget;

    @Setup(Level.Trial)
    public void setUp() {
        memory = PhysicalMemory.create(4L << 30);
        RegisteredUserMemory user = new RegisteredUserMemory(memory);
        // Physically contiguous and 1 GiB aligned, as huge-page-backed guest RAM would be.
        user.register(USER_VA, lengthBytes, Math.min(lengthBytes, 1L << 30), true);
        ctx = new IommufdContext(user, new MockIommuDriver(memory));
        ioas = ctx.ioasAlloc();
        ctx.selftest().mockDomain(ioas);
        arena = Arena.ofShared();
        copySource = arena.allocate(lengthBytes, 4096);
        copyTarget = arena.allocate(lengthBytes, 4096);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ctx.close();
        memory.close();
        arena.close();
    }

    /** One IOAS_MAP at a fixed IOVA and the IOAS_UNMAP of it. */
    @Benchmark
    public long mapUnmap() {
        ctx.ioasMap(ioas, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, USER_VA, lengthBytes, IOVA);
        return ctx.ioasUnmap(ioas, IOVA, lengthBytes);
    }

    /** Baseline: copy the same number of bytes off-heap. */
    @Benchmark
    public MemorySegment baselineCopy() {
        return copyTarget.copyFrom(copySource);
    }
}
