package dev.jiommu.bench;

import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.Prot;
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
 * {@link PageTable#map}: the driver's cost of mapping into a table whose path already exists.
 *
 * <p>{@link #mapOnePage} is one map call of one page, {@link #mapRange} one map call of a run of
 * 4 KiB pages (256 by default: the "256 × 4 KiB"). Each invocation makes a batch of such calls
 * into slots that an untimed per-invocation setup emptied, and the score is divided by the batch.
 * A neighbour page mapped once at the top slot of each leaf table keeps that table (and the path to
 * it) alive when the setup unmaps, so what is timed is the descent through existing tables, the
 * overlap check and the leaf stores, never a table allocation. Calls in a batch go to consecutive
 * slots of one leaf table, so the tables are hot in cache: this is the best case of a map, as the
 * baseline's hot chain is the best case of four dependent reads.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class PtMapBenchmark {
    /** Single-page map calls per invocation: enough to make per-invocation timing overhead negligible. */
    static final int PAGES_PER_INVOCATION = 256;
    /** Range map calls per invocation, each into its own leaf table. */
    static final int RANGES_PER_INVOCATION = 8;

    /** A table with room for a batch of single pages of {@code pageBytes} in one leaf table. */
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

        /** Empties the batch's slots (untimed); the first time there is nothing to empty. */
        @Setup(Level.Invocation)
        public void unmapBatch() {
            bench.table.unmap(BenchTable.BASE_IOVA, PAGES_PER_INVOCATION * pageBytes);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            // The last invocation's pages must all be there, and the neighbour too.
            bench.expectTranslation(BenchTable.BASE_IOVA, BenchTable.BASE_PA);
            long last = (PAGES_PER_INVOCATION - 1) * pageBytes;
            bench.expectTranslation(BenchTable.BASE_IOVA + last, BenchTable.BASE_PA + last);
            long neighbour = BenchTable.neighbourOffset(pageBytes);
            bench.expectTranslation(BenchTable.BASE_IOVA + neighbour, BenchTable.BASE_PA + neighbour);
            bench.close();
        }
    }

    /** A table with room for a batch of ranges of {@code pages} 4 KiB pages, one range per leaf table. */
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

        @Setup(Level.Invocation)
        public void unmapBatch() {
            for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
                bench.table.unmap(BenchTable.rangeIova(r), lengthBytes);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
                bench.expectTranslation(BenchTable.rangeIova(r), BenchTable.rangePa(r));
                long last = lengthBytes - BenchTable.SMALL_PAGE_BYTES;
                bench.expectTranslation(BenchTable.rangeIova(r) + last, BenchTable.rangePa(r) + last);
            }
            bench.close();
        }
    }

    /** One map call of one page of {@code pageBytes}. */
    @Benchmark
    @OperationsPerInvocation(PAGES_PER_INVOCATION)
    public void mapOnePage(SinglePages s) {
        PageTable table = s.bench.table;
        long pageBytes = s.pageBytes;
        for (int i = 0; i < PAGES_PER_INVOCATION; i++) {
            table.map(BenchTable.BASE_IOVA + i * pageBytes, BenchTable.BASE_PA + i * pageBytes, pageBytes, Prot.READ_WRITE);
        }
    }

    /** One map call of {@code pages} 4 KiB pages. */
    @Benchmark
    @OperationsPerInvocation(RANGES_PER_INVOCATION)
    public void mapRange(Ranges s) {
        PageTable table = s.bench.table;
        long lengthBytes = s.lengthBytes;
        for (int r = 0; r < RANGES_PER_INVOCATION; r++) {
            table.map(BenchTable.rangeIova(r), BenchTable.rangePa(r), lengthBytes, Prot.READ_WRITE);
        }
    }

    /** Four dependent 64-bit reads and one write on off-heap memory, measured in the same run. */
    @Benchmark
    public long baselineDependentReads(DependentReadChain chain) {
        return chain.run();
    }
}
