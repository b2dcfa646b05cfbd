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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Throughput of 4 KiB DMA writes with one device on one thread ({@link #baselineOneDevice}) and two
 * devices on two threads ({@link #twoDevices}); scaling = twoDevices / baselineOneDevice (ideal 2).
 * {@code units=2}: each device behind its own VT-d unit (own lock and caches); {@code units=1}:
 * both behind one unit, sharing its lock.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
public class VtdScalingBenchmark {
    static final int LENGTH = 4096;

    @State(Scope.Benchmark)
    public static class Machine {
        @Param({"2", "1"})
        public int units;

        VtdRig[] rigs;
        final AtomicInteger nextDevice = new AtomicInteger();

        @Setup(Level.Trial)
        public void setUp() {
            rigs = new VtdRig[units];
            for (int i = 0; i < units; i++) {
                rigs[i] = new VtdRig(VtdConfig.scalable(), 32);
                rigs[i].secondStage(4096, false);
            }
            nextDevice.set(0);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            for (VtdRig rig : rigs) {
                rig.close();
            }
        }
    }

    @State(Scope.Thread)
    public static class Device {
        DmaTestDevice device;
        long base;
        int next;

        @Setup(Level.Trial)
        public void setUp(Machine m) {
            int index = m.nextDevice.getAndIncrement();
            VtdRig rig = m.rigs[index % m.units];
            // Both devices use the rig's RID: same context, same IOTLB tags, different pages.
            device = new DmaTestDevice("dma" + index, PciRequesterId.of(VtdRig.RID), rig.memory, rig.unit, DmaTestDevice.Options.PLAIN, LENGTH);
            base = VtdRig.IOVA + (index / m.units) * 16L * 4096;
            for (int i = 0; i < 16; i++) {
                device.write(Translator.NO_PASID, base + i * 4096L, 0, LENGTH);
            }
        }
    }

    @Benchmark
    @Threads(1)
    public int baselineOneDevice(Machine m, Device d) {
        return write(d);
    }

    @Benchmark
    @Threads(2)
    public int twoDevices(Machine m, Device d) {
        return write(d);
    }

    private static int write(Device d) {
        int i = d.next;
        d.next = (i + 1) & 15;
        return d.device.write(Translator.NO_PASID, d.base + i * 4096L, 0, LENGTH);
    }
}
