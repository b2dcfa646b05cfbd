package dev.jiommu.hw.vtd;

import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Tables a hostile guest or a buggy driver writes: every one ends in a fault value, never an exception or a loop. */
class VtdHostileTablesTest {
    static final int RID = 0x0310;
    static final long NOWHERE = 0x7fff_0000_0000L;

    @Test
    void pointersOutsideMemoryFaultWithTheirReason() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.memory.write64(bed.rootTable + 3 * 16, NOWHERE | 1);
            assertThat(bed.unit.translate(RID, Translator.NO_PASID, 0, Access.READ)).isEqualTo(-FaultReason.CONTEXT_TABLE_INVALID.code());
            bed.memory.write64(bed.rootTable + 4 * 16, 0);
            bed.legacyContext(0x0410, NOWHERE, ContextEntry.TT_UNTRANSLATED, 2, 1);
            assertThat(bed.unit.translate(0x0410, Translator.NO_PASID, 0, Access.READ)).isEqualTo(-FaultReason.PAGING_ENTRY_INVALID.code());
        }
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            long contextTable = bed.memory.allocateFrame();
            bed.memory.write64(bed.rootTable + 3 * 16, contextTable | 1);
            ScalableContextEntry ce = ScalableContextEntry.of(NOWHERE, 0, ScalableContextEntry.PASIDE);
            bed.memory.write64(contextTable + (RID & 0x7f) * 32L, ce.q0());
            assertThat(bed.unit.translate(RID, 1, 0, Access.READ)).isEqualTo(-FaultReason.PASID_DIR_ACCESS.code());
            long dir = bed.scalableContext(0x0510, ScalableContextEntry.PASIDE);
            bed.memory.write64(dir, NOWHERE | 1);
            assertThat(bed.unit.translate(0x0510, 1, 0, Access.READ)).isEqualTo(-FaultReason.PASID_TABLE_ACCESS.code());
            long dir2 = bed.scalableContext(0x0610, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir2, 1, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), 1, PasidEntry.q2(NOWHERE, 0, 0)));
            assertThat(bed.unit.translate(0x0610, 1, 0, Access.READ)).isEqualTo(-FaultReason.FS_ENTRY_ACCESS.code());
            bed.pasidEntry(dir2, 2, PasidEntry.of(PasidEntry.q0(NOWHERE, 2, PasidEntry.PGTT_SECOND_STAGE, false), 1, 0));
            assertThat(bed.unit.translate(0x0610, 2, 0, Access.READ)).isEqualTo(-FaultReason.SS_ENTRY_ACCESS.code());
        }
    }

    @Test
    void aTableThatPointsAtItselfEndsTheWalk() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            long table = bed.memory.allocateFrame();
            for (int i = 0; i < 512; i++) {
                bed.memory.write64(table + i * 8L, table | VtdSecondStage.R | VtdSecondStage.W);
            }
            bed.legacyContext(RID, table, ContextEntry.TT_UNTRANSLATED, 2, 1);
            // Four levels, each the same table: the leaf level reads the table address as a 4 KiB page.
            assertThat(bed.unit.translate(RID, Translator.NO_PASID, 0x1234_5000L, Access.READ)).isEqualTo(table);
        }
    }

    @Test
    void randomGarbageInEveryStructureNeverThrows() {
        long seed = 0x5eed_0f_10ff_e7L;
        SplittableRandom random = new SplittableRandom(seed);
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            long[] pages = new long[16];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = bed.memory.allocateFrame();
            }
            long contextTable = pages[0];
            bed.memory.write64(bed.rootTable + 3 * 16, contextTable | 1);
            for (int round = 0; round < 2000; round++) {
                long page = pages[random.nextInt(pages.length)];
                long value = switch (random.nextInt(4)) {
                    case 0 -> random.nextLong();
                    case 1 -> pages[random.nextInt(pages.length)] | random.nextInt(0x1000);
                    case 2 -> pages[random.nextInt(pages.length)] | (random.nextLong() & 0xfffL) | ((long) random.nextInt(8) << 6);
                    default -> random.nextLong() & 0xffff_f000_0fffL;
                };
                bed.memory.write64(page + random.nextInt(512) * 8L, value);
                if (round % 50 == 0) {
                    bed.submit(InvDesc.contextCache(InvDesc.G_GLOBAL, 0, 0, 0), InvDesc.pasidCache(InvDesc.PCG_GLOBAL, 0, 0),
                            InvDesc.iotlb(InvDesc.G_GLOBAL, 0, 0, 0, false));
                }
                int rid = 0x0300 | random.nextInt(256);
                int pasid = random.nextInt(4) == 0 ? Translator.NO_PASID : random.nextInt(1 << 20);
                int access = random.nextBoolean() ? Access.READ : Access.WRITE | (random.nextBoolean() ? Access.PRIV : 0);
                long result = bed.unit.translate(rid, pasid, random.nextLong() & 0xffff_ffff_f000L, access);
                if (result < 0) {
                    assertThat(FaultReason.of((int) -result)).as("seed=0x%x round %d", seed, round).isNotEqualTo(FaultReason.UNKNOWN);
                }
            }
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE).isZero();
        }
    }

    @Test
    void aQueueBaseOutsideMemoryIsAnInvalidQueueError() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_TE);
            bed.unit.write64(VtdRegs.IQA, NOWHERE);
            bed.unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_TE | VtdRegs.GCMD_QIE);
            bed.unit.write64(VtdRegs.IQT, 16);
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE).isNotZero();
            assertThat(bed.unit.read64(VtdRegs.IQH)).isZero();
        }
    }

    @Test
    void firstStageReservedBitsFault() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            long root = bed.memory.allocateFrame();
            // PS in a PML4E is reserved.
            bed.memory.write64(root, bed.memory.allocateFrame() | X86_64.P | X86_64.PS | X86_64.US | X86_64.RW);
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir, 1, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), 1, PasidEntry.q2(root, 0, 0)));
            assertThat(bed.unit.translate(RID, 1, 0x1000, Access.READ)).isEqualTo(-FaultReason.FS_ENTRY_RESERVED.code());
        }
    }
}
