package dev.jiommu.bench;

import dev.jiommu.pt.Access;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.WalkResult;
import dev.jiommu.pt.WalkStatus;
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
 * {@link PageTableWalker#walk}: the hardware walk an emulator does on an IOTLB miss, through a table
 * holding a page of {@code pageBytes} (4, 3 or 2 levels deep), with a reused {@link WalkResult}.
 *
 * <ul>
 *   <li>{@link #walkWithoutUpdates}: a read, accessed/dirty updates off (VT-d without SSADE).
 *   <li>{@link #walkWithUpdates}: a write, accessed/dirty updates on. After the first walk every bit
 *       is already set, so each walk checks and stores nothing, as hardware skips its locked update.
 *   <li>{@link #walkSettingDirty}: a write, updates on, to a page whose dirty bit an untimed
 *       per-invocation setup cleared (read-and-clear-dirty, as a VMM does between migration passes),
 *       so every walk sets it with a compare-and-set. A batch of pages per invocation, one walk each.
 * </ul>
 * Tables are hot in cache.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class PtWalkBenchmark {
    static final int PAGES_PER_INVOCATION = 256;
    static final int UPDATES = PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY;

    /** A table holding one page of {@code pageBytes}, an address in it, and a walker. */
    @State(Scope.Thread)
    public static class Mapped {
        @Param({FormatParam.VTD_SS, FormatParam.X86_64, FormatParam.AMD_V1})
        public String format;
        @Param({"4096", "2097152", "1073741824"})
        public long pageBytes;

        BenchTable bench;
        PageTableFormat pageFormat;
        PageTableWalker walker;
        WalkResult result;
        long root;
        long iova;

        @Setup(Level.Trial)
        public void setUp() {
            bench = new BenchTable(format);
            pageFormat = bench.format;
            walker = new PageTableWalker(bench.memory);
            result = new WalkResult();
            root = bench.table.rootAddress();
            bench.mapPages(BenchTable.BASE_IOVA, BenchTable.BASE_PA, pageBytes, 1);
            long offset = pageBytes / 2 + 0x48;
            iova = BenchTable.BASE_IOVA + offset;
            expectWalk(walker, pageFormat, root, iova, Access.READ, 0, result, BenchTable.BASE_PA + offset);
            expectWalk(walker, pageFormat, root, iova, Access.WRITE, UPDATES, result, BenchTable.BASE_PA + offset);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            bench.close();
        }
    }

    /** A batch of pages of {@code pageBytes} in one leaf table, made clean before each invocation. */
    @State(Scope.Thread)
    public static class Cleaned {
        @Param({FormatParam.VTD_SS, FormatParam.X86_64, FormatParam.AMD_V1})
        public String format;
        @Param({"4096", "2097152", "1073741824"})
        public long pageBytes;

        BenchTable bench;
        PageTableFormat pageFormat;
        PageTableWalker walker;
        WalkResult result;
        DirtyBitmap bitmap;
        long root;

        @Setup(Level.Trial)
        public void setUp() {
            bench = new BenchTable(format);
            pageFormat = bench.format;
            walker = new PageTableWalker(bench.memory);
            result = new WalkResult();
            root = bench.table.rootAddress();
            bitmap = new DirtyBitmap(BenchTable.BASE_IOVA, Long.numberOfTrailingZeros(pageBytes), PAGES_PER_INVOCATION);
            bench.mapPages(BenchTable.BASE_IOVA, BenchTable.BASE_PA, pageBytes, PAGES_PER_INVOCATION);
            for (int i = 0; i < PAGES_PER_INVOCATION; i++) {
                expectWalk(walker, pageFormat, root, BenchTable.BASE_IOVA + i * pageBytes, Access.WRITE, UPDATES, result,
                        BenchTable.BASE_PA + i * pageBytes);
            }
        }

        /** Clears every dirty bit of the batch (untimed), so each timed walk has one to set. */
        @Setup(Level.Invocation)
        public void clearDirty() {
            bench.table.readAndClearDirty(BenchTable.BASE_IOVA, PAGES_PER_INVOCATION * pageBytes, bitmap, false);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            // The last batch's walks must have left every page dirty again.
            DirtyBitmap check = new DirtyBitmap(BenchTable.BASE_IOVA, Long.numberOfTrailingZeros(pageBytes), PAGES_PER_INVOCATION);
            bench.table.readAndClearDirty(BenchTable.BASE_IOVA, PAGES_PER_INVOCATION * pageBytes, check, true);
            if (check.cardinality() != PAGES_PER_INVOCATION) {
                throw new IllegalStateException(format + ": " + check.cardinality() + " of " + PAGES_PER_INVOCATION + " pages dirty after the walks");
            }
            bench.close();
        }
    }

    static void expectWalk(PageTableWalker walker, PageTableFormat format, long root, long iova, int access, int flags,
                           WalkResult result, long expectedPa) {
        WalkStatus status = walker.walk(format, root, iova, access, flags, result);
        if (status != WalkStatus.OK || result.outputAddress() != expectedPa) {
            throw new IllegalStateException(String.format("%s: walk of iova=0x%x gave %s, expected pa=0x%x", format.name(), iova, result, expectedPa));
        }
    }

    /** One read walk, no accessed/dirty updates; {@return the output address} */
    @Benchmark
    public long walkWithoutUpdates(Mapped s) {
        s.walker.walk(s.pageFormat, s.root, s.iova, Access.READ, 0, s.result);
        return s.result.outputAddress();
    }

    /** One write walk with accessed/dirty updates on, the bits already set; {@return the output address} */
    @Benchmark
    public long walkWithUpdates(Mapped s) {
        s.walker.walk(s.pageFormat, s.root, s.iova, Access.WRITE, UPDATES, s.result);
        return s.result.outputAddress();
    }

    /** One write walk that sets a clean page's dirty bit; {@return the sum of the output addresses} */
    @Benchmark
    @OperationsPerInvocation(PAGES_PER_INVOCATION)
    public long walkSettingDirty(Cleaned s) {
        PageTableWalker walker = s.walker;
        PageTableFormat format = s.pageFormat;
        WalkResult result = s.result;
        long pageBytes = s.pageBytes;
        long sum = 0;
        for (int i = 0; i < PAGES_PER_INVOCATION; i++) {
            walker.walk(format, s.root, BenchTable.BASE_IOVA + i * pageBytes, Access.WRITE, UPDATES, result);
            sum += result.outputAddress();
        }
        return sum;
    }

    /** Four dependent 64-bit reads and one write on off-heap memory, measured in the same run. */
    @Benchmark
    public long baselineDependentReads(DependentReadChain chain) {
        return chain.run();
    }
}
