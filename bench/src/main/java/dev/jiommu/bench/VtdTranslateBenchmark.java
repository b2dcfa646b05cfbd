package dev.jiommu.bench;

import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.VtdUnit;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.pt.Access;
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
 * {@link VtdUnit#translate}: one DMA translation through an emulated VT-d unit, under its lock.
 *
 * <ul>
 *   <li>{@link #iotlbHit}: context cache, PASID cache and IOTLB all hit (scalable, second stage).
 *   <li>{@link #secondStageMiss}: the IOTLB misses (a 64-entry IOTLB, 4096 pages visited in turn),
 *       so each translation walks the 4-level second stage and fills an entry, evicting another.
 *   <li>{@link #nestedMiss}: the same through a nested PASID entry: a 4-level first stage whose
 *       table pointers go through a 4-level second stage: 24 table reads per miss with the nested
 *       walk cache off, 8 with it on (the table pages' stage-2 translations stay cached).
 * </ul>
 * Baseline: four dependent 64-bit reads and one write on off-heap memory, in the same run.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class VtdTranslateBenchmark {
    static final int MISS_PAGES = 4096;

    @State(Scope.Thread)
    public static class Hit {
        VtdRig rig;
        long iova;

        @Setup(Level.Trial)
        public void setUp() {
            rig = new VtdRig(VtdConfig.scalable(), 16);
            rig.secondStage(4096, false);
            iova = VtdRig.IOVA + 0x123;
            rig.expect(rig.unit.translate(VtdRig.RID, -1, iova, Access.READ), rig.dataPa + 0x123);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            rig.close();
        }
    }

    @State(Scope.Thread)
    public static class Miss {
        VtdRig rig;

        @Setup(Level.Trial)
        public void setUp() {
            rig = new VtdRig(VtdConfig.scalable(64, 256, 256), MISS_PAGES);
            rig.secondStage(4096, false);
            for (int i = 0; i < MISS_PAGES; i++) {
                rig.expect(rig.unit.translate(VtdRig.RID, -1, VtdRig.IOVA + i * 4096L, Access.READ), rig.dataPa + i * 4096L);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            long misses = rig.unit.stats().iotlbMisses();
            if (misses < MISS_PAGES) {
                throw new IllegalStateException("expected IOTLB misses, saw " + misses);
            }
            rig.close();
        }
    }

    @State(Scope.Thread)
    public static class NestedMiss {
        /** The nested paging-structure cache: on (stage-2 translations of table pages cached) or off (full 4 × 4 walks). */
        @Param({"on", "off"})
        public String walkCache;

        VtdRig rig;

        @Setup(Level.Trial)
        public void setUp() {
            VtdConfig config = VtdConfig.scalable(64, 256, 256);
            rig = new VtdRig(walkCache.equals("on") ? config : config.withNestedWalkCache(0), MISS_PAGES);
            rig.nested(PasidEntry.PGTT_NESTED);
            for (int i = 0; i < MISS_PAGES; i++) {
                rig.expect(rig.unit.translate(VtdRig.RID, -1, VtdRig.IOVA + i * 4096L, Access.READ), rig.dataPa + i * 4096L);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            rig.close();
        }
    }

    /** One translation whose every cache hits; {@return the physical address} */
    @Benchmark
    public long iotlbHit(Hit s) {
        return s.rig.unit.translate(VtdRig.RID, -1, s.iova, Access.READ);
    }

    /** One IOTLB miss with a 4-level second-stage walk and fill (a batch of pages, each missing). */
    @Benchmark
    @OperationsPerInvocation(MISS_PAGES)
    public long secondStageMiss(Miss s) {
        VtdUnit unit = s.rig.unit;
        long sum = 0;
        for (int i = 0; i < MISS_PAGES; i++) {
            sum += unit.translate(VtdRig.RID, -1, VtdRig.IOVA + i * 4096L, Access.READ);
        }
        return sum;
    }

    /** One IOTLB miss with a nested 4 × 4 walk and fill. */
    @Benchmark
    @OperationsPerInvocation(MISS_PAGES)
    public long nestedMiss(NestedMiss s) {
        VtdUnit unit = s.rig.unit;
        long sum = 0;
        for (int i = 0; i < MISS_PAGES; i++) {
            sum += unit.translate(VtdRig.RID, -1, VtdRig.IOVA + i * 4096L, Access.READ);
        }
        return sum;
    }

    @Benchmark
    public long baselineDependentReads(DependentReadChain chain) {
        return chain.run();
    }
}
