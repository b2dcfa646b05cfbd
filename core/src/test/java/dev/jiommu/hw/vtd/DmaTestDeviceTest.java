package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The DMA test device's commands through a VT-d unit: copy, compare, batched page writes, counters. */
class DmaTestDeviceTest {
    static final int RID = 0x0310;

    @Test
    void copyComparesAndBatchesAcrossPages() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(64 * 4096, 4096);
            // Scatter: IOVA page i -> physical page 63 - i.
            for (int i = 0; i < 64; i++) {
                ss.map(0x100_0000 + i * 4096L, pa + (63 - i) * 4096L, 4096, Prot.READ_WRITE);
            }
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, 7);
            DmaTestDevice dev = new DmaTestDevice("dma", PciRequesterId.of(RID), bed.memory, bed.unit,
                    DmaTestDevice.Options.PLAIN, 8192);
            byte[] data = new byte[16 * 4096];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i / 4096 + 1);
            }
            for (int i = 0; i < 16; i++) {
                bed.memory.writeBytes(pa + (63 - i) * 4096L, java.util.Arrays.copyOfRange(data, i * 4096, (i + 1) * 4096));
            }
            // copy 16 pages at IOVA 0 -> IOVA 32, through an 8 KiB device buffer
            assertThat(dev.copy(Translator.NO_PASID, 0x100_0000, 0x100_0000 + 32 * 4096L, data.length)).isZero();
            assertThat(dev.compare(Translator.NO_PASID, 0x100_0000 + 32 * 4096L, data)).isZero();
            assertThat(bed.memory.readBytes(pa + (63 - 40) * 4096L, 4096)).containsOnly(9);
            data[5000] ^= 1;
            assertThat(dev.compare(Translator.NO_PASID, 0x100_0000 + 32 * 4096L, data)).isEqualTo(DmaTestDevice.MISMATCH);

            dev.buffer().asSlice(0, 4096).fill((byte) 0x31);
            dev.buffer().asSlice(4096, 4096).fill((byte) 0x32);
            long[] iovas = {0x100_0000 + 20 * 4096L, 0x100_0000 + 22 * 4096L, 0x100_0000 + 24 * 4096L};
            assertThat(dev.writePages(Translator.NO_PASID, iovas, 4096)).isZero();
            assertThat(bed.memory.readBytes(pa + (63 - 20) * 4096L, 4096)).containsOnly(0x31);
            assertThat(bed.memory.readBytes(pa + (63 - 22) * 4096L, 4096)).containsOnly(0x32);
            assertThat(bed.memory.readBytes(pa + (63 - 24) * 4096L, 4096)).containsOnly(0x31);
            long[] withHole = {0x100_0000 + 26 * 4096L, 0x200_0000};
            assertThat(dev.writePages(Translator.NO_PASID, withHole, 4096)).isEqualTo(FaultReason.WRITE.code());
            assertThat(bed.memory.readBytes(pa + (63 - 26) * 4096L, 4096)).as("pages before the fault were written").containsOnly(0x31);
            assertThat(dev.faults()).isEqualTo(1);
            assertThat(dev.bytes()).isEqualTo(2L * data.length + 2L * data.length + 4 * 4096);
        }
    }
}
