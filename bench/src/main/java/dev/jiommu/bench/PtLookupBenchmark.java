package dev.jiommu.bench;

import dev.jiommu.pt.PageTable;
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

import java.util.concurrent.TimeUnit;

/**
 * {@link PageTable#iovaToPhys}: the driver's software lookup (the kernel's iova_to_phys) of an
 * address inside one mapped page of {@code pageBytes}, so it descends 4, 3 or 2 levels for a 4 KiB,
 * 2 MiB or 1 GiB page. The same address every call: tables hot in cache.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class PtLookupBenchmark {
    /** A table holding one page of {@code pageBytes}, and an address in the middle of it. */
    @State(Scope.Thread)
    public static class Mapped {
        @Param({FormatParam.VTD_SS, FormatParam.X86_64, FormatParam.AMD_V1})
        public String format;
        @Param({"4096", "2097152", "1073741824"})
        public long pageBytes;

        BenchTable bench;
        PageTable table;
        long iova;

        @Setup(Level.Trial)
        public void setUp() {
            bench = new BenchTable(format);
            table = bench.table;
            bench.mapPages(BenchTable.BASE_IOVA, BenchTable.BASE_PA, pageBytes, 1);
            long offset = pageBytes / 2 + 0x48;
            iova = BenchTable.BASE_IOVA + offset;
            bench.expectTranslation(iova, BenchTable.BASE_PA + offset);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            bench.close();
        }
    }

    /** One iova-to-phys of a mapped address. */
    @Benchmark
    public long iovaToPhys(Mapped s) {
        return s.table.iovaToPhys(s.iova);
    }

    /** Four dependent 64-bit reads and one write on off-heap memory, measured in the same run. */
    @Benchmark
    public long baselineDependentReads(DependentReadChain chain) {
        return chain.run();
    }
}
