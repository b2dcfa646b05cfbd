package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * DMA on the IOTLB hit path (the unit lock's shared side) racing unmap + invalidation on another
 * thread: once the invalidation's wait descriptor completes, no DMA may reach the unmapped page.
 */
class VtdConcurrentDmaTest {
    static final int RID = 0x0310;
    static final long IOVA = 0x100_0000;

    @Test
    void noDmaReachesAPageAfterItsInvalidationCompletes() throws Exception {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(4096, 4096);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, 7);
            for (int round = 0; round < 50; round++) {
                ss.map(IOVA, pa, 4096, Prot.READ_WRITE);
                bed.submit(InvDesc.iotlb(InvDesc.G_GLOBAL, 0, 0, 0, false));
                DmaTestDevice dev = new DmaTestDevice("dma" + round, PciRequesterId.of(RID), bed.memory, bed.unit,
                        DmaTestDevice.Options.PLAIN, 4096);
                AtomicLong attempts = new AtomicLong();
                Thread writer = new Thread(() -> {
                    // Each DMA writes its sequence number; it stops at the first fault.
                    for (long i = 1; ; i++) {
                        dev.buffer().set(ValueLayout.JAVA_LONG, 0, i);
                        int r = dev.write(Translator.NO_PASID, IOVA, 0, 4096);
                        attempts.incrementAndGet();
                        if (r != 0) {
                            return;
                        }
                    }
                });
                writer.start();
                while (attempts.get() < 200) {
                    Thread.onSpinWait();
                }
                ss.unmap(IOVA, 4096);
                bed.submit(InvDesc.iotlb(InvDesc.G_GLOBAL, 0, 0, 0, false));
                long afterInvalidation = bed.memory.read64(pa);
                writer.join(10_000);
                assertThat(writer.isAlive()).as("the DMA faulted after the invalidation").isFalse();
                assertThat(bed.memory.read64(pa)).as("round %d: a DMA wrote the page after its invalidation completed", round)
                        .isEqualTo(afterInvalidation);
                assertThat(dev.faults()).isEqualTo(1);
                bed.takeFaults();
            }
        }
    }
}
