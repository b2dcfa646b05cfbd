package dev.jiommu.bench;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
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
 * DMA writes of {@code lengthBytes} by the test device through a VT-d unit whose IOTLB is warm
 * (64 KiB cycled, all cached), behind 4 KiB or 2 MiB second-stage leaves ({@code pageBytes}), beside {@link #baselineCopy}: a raw {@link MemorySegment#copy} of
 * the same bytes between two native segments, in the same run. Bandwidth ratio = baseline / dma.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class VtdDmaBenchmark {
    static final int PAGES = 512;

    @State(Scope.Thread)
    public static class Rig {
        @Param({"4096", "65536"})
        public int lengthBytes;
        /** The IOMMU page size behind the IOVAs: 4 KiB leaves, or one 2 MiB leaf. */
        @Param({"4096", "2097152"})
        public long pageBytes;

        VtdRig rig;
        DmaTestDevice device;
        int bursts;
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            rig = new VtdRig(VtdConfig.scalable(), PAGES);
            rig.secondStage(pageBytes, false);
            device = new DmaTestDevice("bench", PciRequesterId.of(VtdRig.RID), rig.memory, rig.unit, DmaTestDevice.Options.PLAIN, lengthBytes);
            device.buffer().fill((byte) 0x5a);
            bursts = Math.max(1, 16 * 4096 / lengthBytes);
            for (int i = 0; i < bursts; i++) {
                if (device.write(Translator.NO_PASID, VtdRig.IOVA + (long) i * lengthBytes, 0, lengthBytes) != 0) {
                    throw new IllegalStateException("setup DMA faulted");
                }
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            if (rig.memory.readBytes(rig.dataPa, 64)[63] != 0x5a) {
                throw new IllegalStateException("DMA did not reach memory");
            }
            rig.close();
        }
    }

    @State(Scope.Thread)
    public static class Raw {
        @Param({"4096", "65536"})
        public int lengthBytes;
        /** Unused by the copy; present so each DMA row finds the baseline run with its own params. */
        @Param({"4096", "2097152"})
        public long pageBytes;

        Arena arena;
        MemorySegment src;
        MemorySegment dst;
        int bursts;
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            arena = Arena.ofShared();
            src = arena.allocate(lengthBytes, 4096);
            src.fill((byte) 0x5a);
            bursts = Math.max(1, 16 * 4096 / lengthBytes);
            dst = arena.allocate((long) bursts * lengthBytes, 4096);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    /** One DMA write of lengthBytes through the IOMMU (translation per page, warm IOTLB). */
    @Benchmark
    public int dmaWrite(Rig s) {
        int i = s.next;
        s.next = i + 1 == s.bursts ? 0 : i + 1;
        return s.device.write(Translator.NO_PASID, VtdRig.IOVA + (long) i * s.lengthBytes, 0, s.lengthBytes);
    }

    /** The same bytes copied between two native segments. */
    @Benchmark
    public MemorySegment baselineCopy(Raw s) {
        int i = s.next;
        s.next = i + 1 == s.bursts ? 0 : i + 1;
        MemorySegment.copy(s.src, 0, s.dst, (long) i * s.lengthBytes, s.lengthBytes);
        return s.dst;
    }
}
