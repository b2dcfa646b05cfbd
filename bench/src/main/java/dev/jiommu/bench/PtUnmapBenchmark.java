package dev.jiommu.bench;

import dev.jiommu.pt.PageTable;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * {@link PageTable#unmap}: the driver's cost of unmapping from a table that stays in use.
 *
 * <p>The mirror of {@link PtMapBenchmark}: an untimed per-invocation setup maps a batch (single pages
 * of {@code pageBytes} with one map call each, or ranges of {@code pages} 4 KiB leaves), the timed
 * invocation unmaps it with one unmap call per page or per range, and the score is divided by the
 * batch. The neighbour page at the top slot of each leaf table keeps the table from emptying, so no
 * table is freed: what is timed is the descent, the leaf clears and the live-count update. The
 * tables are hot in cache.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class PtUnmapBenchmark {
    static final int PAGES_PER_INVOCATION = PtMapBenchmark.PAGES_PER_INVOCATION;
    static final int RANGES_PER_INVOCATION = PtMapBenchmark.RANGES_PER_INVOCATION;

    /** A batch of single pages of {@code pageBytes} in one leaf table, mapped again before each invocation. */
    @State(Scope.Thread)
    public static class SinglePages {
        @Param({FormatParam.VTD_SS, FormatParam.X86_64, FormatParam.AMD_V1})
        public String format;
        @Param({"4096", "2097152", "1073741824"})
        public long pageBytes;

        BenchTable bench;

        @Setup(Level.Trial)
        public void setUp() {
            bench = BenchTable.forSinglePages(format, pageBytes);
        }

        /** Maps the batch again (untimed); a page left over from the last invocation would fail here with EEXIST. */
        @Setup(Level.Invocation)
        public void mapBatch() {
            bench.mapPages(BenchTable.BASE_IOVA, BenchTable.BASE_PA, pageBytes, PAGES_PER_INVOCATION);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            bench.expectUnmapped(BenchTable.BASE_IOVA, pageBytes, PAGES_PER_INVOCATION);
            long neighbour = BenchTable.neighbourOffset(pageBytes);
            bench.expectTranslation(BenchTable.BASE_IOVA + neighbour, BenchTable.BASE_PA + neighbour);
            bench.close();
        }
    }

    /** A batch of ranges of {@code pages} 4 KiB leaves, one per leaf table, mapped again before each invocation. */
    @State(Scope.Thread)
    public static class Ranges {
        @Param({FormatParam.VTD_SS, FormatParam.X86_64, FormatParam.AMD_V1})
        public String format;
        @Param({"256"})
        public int pages;

        BenchTable bench;
        long lengthBytes;

        @Setup(Level.Trial)
        public void setUp() {
            bench = BenchTable.forRanges(format, pages, RANGES_PER_INVOCATION);
            lengthBytes = pages * BenchTable.SMALL_PAGE_BYTES;
        }

        /** Maps the ranges again (untimed), page by page so every format holds 4 KiB leaves. */
        @Setup(Level.Invocation)
        public void mapBatch() {
            for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
                bench.mapPages(BenchTable.rangeIova(r), BenchTable.rangePa(r), BenchTable.SMALL_PAGE_BYTES, pages);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
                bench.expectUnmapped(BenchTable.rangeIova(r), BenchTable.SMALL_PAGE_BYTES, pages);
            }
            bench.close();
        }
    }

    /** One unmap call of one page of {@code pageBytes}; {@return the bytes unmapped by the batch} */
    @Benchmark
    @OperationsPerInvocation(PAGES_PER_INVOCATION)
    public long unmapOnePage(SinglePages s) {
        PageTable table = s.bench.table;
        long pageBytes = s.pageBytes;
        long unmapped = 0;
        for (int i = 0; i < PAGES_PER_INVOCATION; i++) {
            unmapped += table.unmap(BenchTable.BASE_IOVA + i * pageBytes, pageBytes);
        }
        return unmapped;
    }

    /** One unmap call of {@code pages} 4 KiB pages; {@return the bytes unmapped by the batch} */
    @Benchmark
    @OperationsPerInvocation(RANGES_PER_INVOCATION)
    public long unmapRange(Ranges s) {
        PageTable table = s.bench.table;
        long lengthBytes = s.lengthBytes;
        long unmapped = 0;
        for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
            unmapped += table.unmap(BenchTable.rangeIova(r), lengthBytes);
        }
        return unmapped;
    }

    /** Four dependent 64-bit reads and one write on off-heap memory, measured in the same run. */
    @Benchmark
    public long baselineDependentReads(DependentReadChain chain) {
        return chain.run();
    }
}
