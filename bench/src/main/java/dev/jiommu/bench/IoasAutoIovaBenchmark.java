package dev.jiommu.bench;

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

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Automatic-IOVA IOAS_MAP of 4 KiB (and its unmap) in an IOAS fragmented into {@code areas} areas
 * of 4 KiB with 2 KiB holes between them: no hole below the last area fits, so an allocator that
 * walks the areas in order pays for every one of them. Without a domain nothing is pinned, so
 * this measures the allocator and the area bookkeeping.
 *
 * <p>Baseline, same run: one lookup in a {@code HashMap<Long, Long>} of the same size.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class IoasAutoIovaBenchmark {
    private static final long AREA_BYTES = 4096;
    private static final long STRIDE_BYTES = 6144;
    private static final long FIRST_IOVA = 1L << 20;
    private static final long USER_VA = 0x7f00_0000_0000L;

    @Param({"100000"})
    public int areas;

    private PhysicalMemory memory;
    private IommufdContext ctx;
    private int ioas;
    private final Map<Long, Long> hashBaseline = new HashMap<>();
    private long probe;

    @Setup(Level.Trial)
    public void setUp() {
        memory = PhysicalMemory.create(64L << 20);
        ctx = new IommufdContext(new RegisteredUserMemory(memory), null);
        ioas = ctx.ioasAlloc();
        int flags = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
        for (int i = 0; i < areas; i++) {
            long iova = FIRST_IOVA + i * STRIDE_BYTES;
            ctx.ioasMap(ioas, flags, USER_VA + i * AREA_BYTES, AREA_BYTES, iova);
            hashBaseline.put(iova, (long) i);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ctx.close();
        memory.close();
    }

    /** Allocates an IOVA for 4 KiB past all the fragments, maps, and unmaps again. */
    @Benchmark
    public long autoMapUnmap4k() {
        long iova = ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, USER_VA, AREA_BYTES, 0);
        return ctx.ioasUnmap(ioas, iova, AREA_BYTES);
    }

    /** Baseline: one hash lookup among as many entries. */
    @Benchmark
    public Long baselineHashLookup() {
        probe = (probe + 7919) % areas;
        return hashBaseline.get(FIRST_IOVA + probe * STRIDE_BYTES);
    }
}
