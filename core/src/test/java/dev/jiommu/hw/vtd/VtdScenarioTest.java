package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Table-building scenarios in the spirit of QEMU's tests/qtest/iommu-intel-test: legacy
 * pass-through and translated, scalable pass-through, second stage, first stage and nested;
 * DMA through the test device, then the addresses reached and the faults recorded.
 */
class VtdScenarioTest {
    static final int RID = 0x0310; // 00:02.0 on bus 3
    static final int DID = 5;

    static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    static void load(DmaTestDevice dev, byte[] data) {
        dev.buffer().asSlice(0, data.length).copyFrom(java.lang.foreign.MemorySegment.ofArray(data));
    }

    @Test
    void legacyPassThroughReachesThePhysicalAddress() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.legacyContext(RID, 0, ContextEntry.TT_PASS_THROUGH, 2, DID);
            long pa = bed.memory.allocate(2 * 4096, 4096);
            DmaTestDevice dev = bed.device(RID);
            byte[] data = pattern(6000, 1);
            load(dev, data);
            assertThat(dev.write(Translator.NO_PASID, pa + 100, 0, data.length)).isZero();
            assertThat(bed.memory.readBytes(pa + 100, data.length)).isEqualTo(data);
            assertThat(bed.takeFaults()).isEmpty();
        }
    }

    @Test
    void legacySecondStageTranslatesAndFaultsAsHardwareRecords() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(3), bed.memory);
            long pa = bed.memory.allocate(4 * 4096, 4096);
            ss.map(0x40_0000, pa, 2 * 4096, Prot.READ_WRITE);
            ss.map(0x40_2000, pa + 0x2000, 4096, Prot.READ);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 1, DID);
            DmaTestDevice dev = bed.device(RID);
            byte[] data = pattern(8192, 7);
            load(dev, data);
            assertThat(dev.write(Translator.NO_PASID, 0x40_0000, 0, 8192)).isZero();
            assertThat(bed.memory.readBytes(pa, 8192)).isEqualTo(data);
            assertThat(dev.compare(Translator.NO_PASID, 0x40_0000, data)).isZero();

            assertThat(dev.write(Translator.NO_PASID, 0x40_2000, 0, 16)).isEqualTo(FaultReason.WRITE.code());
            assertThat(dev.read(Translator.NO_PASID, 0x50_0000, 0, 16)).isEqualTo(FaultReason.READ.code());
            assertThat(dev.read(Translator.NO_PASID, 1L << 39, 0, 16)).isEqualTo(FaultReason.ADDRESS_BEYOND_MGAW.code());
            List<FaultRecord> faults = bed.takeFaults();
            assertThat(faults).extracting(FaultRecord::reason)
                    .containsExactlyInAnyOrder(FaultReason.WRITE, FaultReason.READ, FaultReason.ADDRESS_BEYOND_MGAW);
            FaultRecord write = faults.stream().filter(f -> f.reason() == FaultReason.WRITE).findFirst().orElseThrow();
            assertThat(write.sid()).isEqualTo(RID);
            assertThat(write.address()).isEqualTo(0x40_2000);
            assertThat(write.read()).isFalse();
            assertThat(write.pasidPresent()).isFalse();
            assertThat(bed.memory.readBytes(pa + 0x2000, 16)).containsOnly(0);
        }
    }

    @Test
    void legacyStructureFaultsCarryTheirReasons() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            DmaTestDevice noRoot = bed.device(0x0500);
            assertThat(noRoot.read(Translator.NO_PASID, 0, 0, 8)).isEqualTo(FaultReason.ROOT_NOT_PRESENT.code());
            bed.legacyContext(0x0508, 0, ContextEntry.TT_PASS_THROUGH, 1, 1);
            DmaTestDevice noContext = bed.device(0x0500);
            assertThat(noContext.read(Translator.NO_PASID, 0, 0, 8)).isEqualTo(FaultReason.CONTEXT_NOT_PRESENT.code());
            bed.legacyContextRaw(0x0510, ContextEntry.P | (3L << 2), 1);
            assertThat(bed.device(0x0510).read(Translator.NO_PASID, 0, 0, 8)).isEqualTo(FaultReason.CONTEXT_INVALID.code());
            bed.legacyContextRaw(0x0518, ContextEntry.P | (1L << 5), 1);
            assertThat(bed.device(0x0518).read(Translator.NO_PASID, 0, 0, 8)).isEqualTo(FaultReason.CONTEXT_RESERVED.code());
            // AW 3 (57-bit) is not in this unit's SAGAW.
            bed.legacyContext(0x0520, bed.memory.allocateFrame(), ContextEntry.TT_UNTRANSLATED, 3, 1);
            assertThat(bed.device(0x0520).read(Translator.NO_PASID, 0, 0, 8)).isEqualTo(FaultReason.CONTEXT_INVALID.code());
            bed.legacyContext(0x0528, 0, ContextEntry.TT_PASS_THROUGH, 1, 1);
            assertThat(bed.device(0x0528).read(7, 0, 0, 8)).isEqualTo(FaultReason.TRANSLATION_TYPE_BLOCKED.code());
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_PPF).isNotZero();
            assertThat(bed.takeFaults()).extracting(FaultRecord::reason).containsExactlyInAnyOrder(FaultReason.ROOT_NOT_PRESENT,
                    FaultReason.CONTEXT_NOT_PRESENT, FaultReason.CONTEXT_INVALID, FaultReason.CONTEXT_RESERVED,
                    FaultReason.CONTEXT_INVALID, FaultReason.TRANSLATION_TYPE_BLOCKED);
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_PPF).isZero();
        }
    }

    @Test
    void faultProcessingDisableSuppressesTheRecord() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(3), bed.memory);
            ContextEntry ce = ContextEntry.of(ss.rootAddress(), 0, 1, DID);
            bed.legacyContextRaw(RID, ce.lo() | ContextEntry.FPD, ce.hi());
            assertThat(bed.device(RID).read(Translator.NO_PASID, 0x1000, 0, 8)).isEqualTo(FaultReason.READ.code());
            assertThat(bed.takeFaults()).isEmpty();
            assertThat(bed.unit.stats().faultsSuppressed()).isEqualTo(1);
        }
    }

    @Test
    void faultRecordsOverflowSetsPfoAndRaisesOneInterrupt() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.unit.write32(VtdRegs.FEADDR, 0xfee0_0000);
            bed.unit.write32(VtdRegs.FEDATA, 0x41);
            bed.unit.write32(VtdRegs.FECTL, 0);
            DmaTestDevice dev = bed.device(0x0700);
            int records = bed.unit.config().cap().faultRecordCount();
            for (int i = 0; i < records + 2; i++) {
                dev.read(Translator.NO_PASID, i * 4096L, 0, 8);
            }
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_PFO).isNotZero();
            assertThat(bed.msis).hasSize(1);
            assertThat(bed.msis.getFirst()).containsExactly(0xfee0_0000L, 0x41);
            assertThat(bed.takeFaults()).hasSize(records);
            assertThat(bed.unit.stats().faultsLost()).isEqualTo(2);
        }
    }

    @Test
    void secondStageLargePagesTranslate() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa2m = bed.memory.allocate(1L << 21, 1L << 21);
            long pa1g = bed.memory.allocate(1L << 30, 1L << 30);
            ss.map(0x20_0000, pa2m, 1L << 21, Prot.READ_WRITE);
            ss.map(1L << 30, pa1g, 1L << 30, Prot.READ_WRITE);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            DmaTestDevice dev = bed.device(RID);
            byte[] data = pattern(3 * 4096, 3);
            load(dev, data);
            assertThat(dev.write(Translator.NO_PASID, 0x20_0000 + 0x1f_f000 - 4096, 0, 4096)).isZero();
            assertThat(dev.write(Translator.NO_PASID, (1L << 30) + 0x1234_5000, 0, 3 * 4096)).isZero();
            assertThat(bed.memory.readBytes(pa2m + 0x1f_e000, 4096)).isEqualTo(java.util.Arrays.copyOf(data, 4096));
            assertThat(bed.memory.readBytes(pa1g + 0x1234_5000, 3 * 4096)).isEqualTo(data);
            // one walk per leaf: a request continues through the rest of the leaf that translated
            assertThat(bed.unit.stats().walks()).isEqualTo(2);
        }
    }

    @Test
    void physicallyContiguousPagesReachTheDeviceAsOnePieceAndAFaultEndsTheBurst() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory, 1L << 12);
            long pa = bed.memory.allocate(8 * 4096, 4096);
            ss.map(0x10_0000, pa, 4 * 4096, Prot.READ_WRITE);                 // contiguous
            ss.map(0x10_4000, pa + 6 * 4096, 4096, Prot.READ_WRITE);          // elsewhere
            ss.map(0x10_5000, pa + 7 * 4096, 4096, Prot.READ_WRITE);          // follows it
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            java.util.List<long[]> pieces = new java.util.ArrayList<>();
            int r = bed.unit.dma(RID, Translator.NO_PASID, 0x10_0800, 7 * 4096, Access.READ, (p, o, l) -> pieces.add(new long[] {p, o, l}));
            assertThat(r).isEqualTo(FaultReason.READ.code());
            assertThat(pieces).containsExactly(new long[] {pa + 0x800, 0, 4 * 4096 - 0x800},
                    new long[] {pa + 6 * 4096, 4 * 4096 - 0x800, 2 * 4096});
            assertThat(bed.unit.stats().walks()).as("every page translated on its own").isEqualTo(7);
        }
    }

    @Test
    void aLargeLeafIsOneIotlbEntry() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(1L << 21, 1L << 21);
            ss.map(0x20_0000, pa, 1L << 21, Prot.READ_WRITE);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            for (int i = 0; i < 512; i += 7) {
                assertThat(bed.unit.translate(RID, Translator.NO_PASID, 0x20_0000 + i * 4096L + 8, Access.READ)).isEqualTo(pa + i * 4096L + 8);
            }
            VtdStats stats = bed.unit.stats();
            assertThat(stats.walks()).isEqualTo(1);
            assertThat(stats.iotlbEntries()).isEqualTo(1);
            assertThat(stats.iotlbMisses()).isEqualTo(1);
        }
    }

    // ---- scalable mode ----

    @Test
    void scalablePassThroughReachesThePhysicalAddress() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            long dir = bed.scalableContext(RID, 0);
            bed.pasidEntry(dir, 0, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_PASS_THROUGH, false), 1, 0));
            long pa = bed.memory.allocateFrame();
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.fill(Translator.NO_PASID, pa, 4096, (byte) 0x5a)).isZero();
            assertThat(bed.memory.readBytes(pa, 4096)).containsOnly(0x5a);
        }
    }

    @Test
    void scalableSecondStageUsesRidPasidAndRefusesPasidWithoutPaside() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(2 * 4096, 4096);
            ss.map(0x1_0000_0000L, pa, 2 * 4096, Prot.READ_WRITE);
            long dir = bed.scalableContext(RID, 0);
            bed.pasidEntry(dir, 0, PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, PasidEntry.PGTT_SECOND_STAGE, false), DID, 0));
            DmaTestDevice dev = bed.device(RID);
            byte[] data = pattern(8192, 9);
            load(dev, data);
            assertThat(dev.write(Translator.NO_PASID, 0x1_0000_0000L, 0, 8192)).isZero();
            assertThat(bed.memory.readBytes(pa, 8192)).isEqualTo(data);
            assertThat(dev.read(3, 0x1_0000_0000L, 0, 8)).isEqualTo(FaultReason.SM_PASIDE_CLEAR.code());
            assertThat(dev.read(Translator.NO_PASID, 0x2_0000_0000L, 0, 8)).isEqualTo(FaultReason.SS_PERMISSION.code());
            assertThat(bed.takeFaults()).extracting(FaultRecord::reason)
                    .containsExactlyInAnyOrder(FaultReason.SM_PASIDE_CLEAR, FaultReason.SS_PERMISSION);
        }
    }

    @Test
    void scalablePasidStructureFaults() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(5, 0, 0, 8)).isEqualTo(FaultReason.PASID_DIR_NOT_PRESENT.code());
            bed.pasidEntry(dir, 6, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_PASS_THROUGH, false), 1, 0));
            assertThat(dev.read(5, 0, 0, 8)).isEqualTo(FaultReason.PASID_ENTRY_NOT_PRESENT.code());
            bed.pasidEntry(dir, 7, PasidEntry.of(PasidEntry.q0(0, 0, 6, false), 1, 0));
            assertThat(dev.read(7, 0, 0, 8)).isEqualTo(FaultReason.PASID_ENTRY_INVALID.code());
            assertThat(dev.read(1 << 14, 0, 0, 8)).isEqualTo(FaultReason.SM_PASID_BEYOND_PDTS.code());
            List<FaultRecord> faults = bed.takeFaults();
            assertThat(faults).hasSize(4);
            assertThat(faults).allSatisfy(f -> assertThat(f.pasidPresent()).isTrue());
            assertThat(faults).extracting(FaultRecord::pasid).containsExactlyInAnyOrder(5, 5, 7, 1 << 14);
        }
    }

    @Test
    void scalableFirstStageSetsAccessedAndDirtyAndChecksPrivilege() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            X86_64 format = new X86_64(4, true);
            PageTable fs = new PageTable(format, bed.memory);
            long pa = bed.memory.allocate(3 * 4096, 4096);
            fs.map(0x7f00_0000_0000L, pa, 4096, Prot.READ_WRITE);
            fs.map(0x7f00_0000_1000L, pa + 0x1000, 4096, Prot.READ);
            fs.map(0x7f00_0000_2000L, pa + 0x2000, 4096, Prot.READ_WRITE | Prot.PRIV);
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir, 9, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), DID,
                    PasidEntry.q2(fs.rootAddress(), 0, 0)));
            // Clear the leaf's A and D so the walk has to set them.
            long leafSlot = leafSlot(bed.memory, format, fs.rootAddress(), 0x7f00_0000_0000L);
            bed.memory.write64(leafSlot, bed.memory.read64(leafSlot) & ~(X86_64.A | X86_64.D));
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(9, 0x7f00_0000_0000L, 0, 64)).isZero();
            assertThat(bed.memory.read64(leafSlot) & (X86_64.A | X86_64.D)).isEqualTo(X86_64.A);
            assertThat(dev.fill(9, 0x7f00_0000_0000L, 64, (byte) 1)).isZero();
            assertThat(bed.memory.read64(leafSlot) & X86_64.D).isEqualTo(X86_64.D);
            assertThat(bed.memory.readBytes(pa, 64)).containsOnly(1);

            assertThat(dev.fill(9, 0x7f00_0000_1000L, 8, (byte) 1)).isEqualTo(FaultReason.FS_WRITE.code());
            assertThat(dev.read(9, 0x7f00_0000_2000L, 0, 8)).isEqualTo(FaultReason.FS_USER_SUPERVISOR.code());
            assertThat(dev.read(9, 0x7f00_0000_5000L, 0, 8)).isEqualTo(FaultReason.FS_ENTRY_NOT_PRESENT.code());
            assertThat(dev.read(9, 0x8000_0000_0000L, 0, 8)).isEqualTo(FaultReason.FS_NON_CANONICAL.code());
            int priv = bed.unit.dma(RID, 9, 0x7f00_0000_2000L, 8, Access.READ | Access.PRIV, (p, o, l) -> { });
            assertThat(priv).isEqualTo(FaultReason.SM_SUPERVISOR_BLOCKED.code());
            assertThat(bed.takeFaults()).extracting(FaultRecord::reason).containsExactlyInAnyOrder(FaultReason.FS_WRITE,
                    FaultReason.FS_USER_SUPERVISOR, FaultReason.FS_ENTRY_NOT_PRESENT, FaultReason.FS_NON_CANONICAL,
                    FaultReason.SM_SUPERVISOR_BLOCKED);
        }
    }

    @Test
    void supervisorRequestsPassWithSre() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            PageTable fs = new PageTable(new X86_64(4, true), bed.memory);
            long pa = bed.memory.allocateFrame();
            fs.map(0x1000, pa, 4096, Prot.READ_WRITE | Prot.PRIV);
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir, 9, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), DID,
                    PasidEntry.q2(fs.rootAddress(), 0, PasidEntry.SRE | PasidEntry.WPE)));
            long[] seen = new long[1];
            assertThat(bed.unit.dma(RID, 9, 0x1008, 8, Access.WRITE | Access.PRIV, (p, o, l) -> seen[0] = p)).isZero();
            assertThat(seen[0]).isEqualTo(pa + 8);
        }
    }

    @Test
    void supervisorWritesToReadOnlyPagesPassOnlyWithoutWriteProtect() {
        for (boolean wpe : new boolean[] {true, false}) {
            try (VtdTestBed bed = VtdTestBed.scalable()) {
                X86_64 format = new X86_64(4, true);
                PageTable fs = new PageTable(format, bed.memory);
                long pa = bed.memory.allocateFrame();
                fs.map(0x1000, pa, 4096, Prot.READ | Prot.PRIV);
                long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
                bed.pasidEntry(dir, 9, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), DID,
                        PasidEntry.q2(fs.rootAddress(), 0, PasidEntry.SRE | (wpe ? PasidEntry.WPE : 0))));
                long slot = leafSlot(bed.memory, format, fs.rootAddress(), 0x1000);
                int r = bed.unit.dma(RID, 9, 0x1008, 8, Access.WRITE | Access.PRIV, (p, o, l) -> bed.memory.fill(p, l, (byte) 5));
                if (wpe) {
                    assertThat(r).as("WPE set").isEqualTo(FaultReason.FS_WRITE.code());
                    assertThat(bed.memory.readBytes(pa + 8, 8)).containsOnly(0);
                } else {
                    assertThat(r).as("WPE clear").isZero();
                    assertThat(bed.memory.readBytes(pa + 8, 8)).containsOnly(5);
                    assertThat(bed.memory.read64(slot) & X86_64.D).as("the write dirtied the page").isNotZero();
                    // A user write still faults: the supervisor's write left no writable IOTLB entry.
                    fs.map(0x2000, bed.memory.allocateFrame(), 4096, Prot.READ);
                    assertThat(bed.unit.dma(RID, 9, 0x2000, 8, Access.WRITE, (p, o, l) -> { })).isEqualTo(FaultReason.FS_WRITE.code());
                }
            }
        }
    }

    /** A nested (PGTT 3) fixture: a 4-level FS whose table pointers and outputs are GPAs, over a 4-level SS. */
    static final class Nested {
        static final long GPA_OFFSET = 0x40_0000_0000L;
        final PageTable fs;
        final PageTable ss;
        final long fsRootGpa;
        final long dataPa;
        final long dataGpa;

        Nested(VtdTestBed bed, long iova, int pages, boolean ssade) {
            X86_64 format = new X86_64(4, true);
            fs = new PageTable(format, bed.memory);
            ss = new PageTable(new VtdSecondStage(4), bed.memory);
            dataPa = bed.memory.allocate(pages * 4096L, 4096);
            dataGpa = 0x1_0000_0000L;
            fs.map(iova, dataGpa, pages * 4096L, Prot.READ_WRITE);
            ss.map(dataGpa, dataPa, pages * 4096L, Prot.READ_WRITE);
            // Turn the FS table's pointers into GPAs (HPA + offset) and map each table page in the SS.
            rewrite(bed.memory, format, fs.rootAddress(), format.topLevel(), ss);
            fsRootGpa = fs.rootAddress() + GPA_OFFSET;
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir, 4, PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, PasidEntry.PGTT_NESTED, ssade), DID,
                    PasidEntry.q2(fsRootGpa, 0, 0)));
        }

        private static void rewrite(PhysicalMemory memory, PageTableFormat format, long table, int level, PageTable ss) {
            ss.map(table + GPA_OFFSET, table, 4096, Prot.READ_WRITE);
            if (level == 0) {
                return;
            }
            for (int i = 0; i < 512; i++) {
                long entry = memory.read64(table + i * 8L);
                if (format.kind(entry, level) == PageTableFormat.TABLE) {
                    long child = format.tableAddress(entry);
                    rewrite(memory, format, child, level - 1, ss);
                    memory.write64(table + i * 8L, (entry & ~X86_64.ADDR_MASK) | (child + GPA_OFFSET));
                }
            }
        }
    }

    @Test
    void nestedTranslatesStageOnePointersThroughStageTwo() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            Nested n = new Nested(bed, 0x5555_0000_0000L, 4, false);
            DmaTestDevice dev = bed.device(RID);
            byte[] data = pattern(4 * 4096, 11);
            load(dev, data);
            assertThat(dev.write(4, 0x5555_0000_0000L, 0, data.length)).isZero();
            assertThat(bed.memory.readBytes(n.dataPa, data.length)).isEqualTo(data);
            // The first page: 4 × (4 + 1) + 4 = 24 reads, plus root, context, PASID dir and entry once.
            // The next three share the first stage's table pages, whose stage-2 translations the
            // nested walk cache now holds: 4 + 4 reads each.
            VtdStats stats = bed.unit.stats();
            assertThat(stats.tableReads()).isEqualTo(24 + 4 + 3 * 8);
            assertThat(stats.nestedWalkCacheHits()).isEqualTo(3 * 4);
        }
    }

    @Test
    void withoutTheNestedWalkCacheEveryMissWalksBothStagesFully() {
        try (VtdTestBed bed = new VtdTestBed(VtdConfig.scalable().withNestedWalkCache(0), true)) {
            Nested n = new Nested(bed, 0x5555_0000_0000L, 4, false);
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.fill(4, 0x5555_0000_0000L, 4 * 4096, (byte) 1)).isZero();
            assertThat(bed.memory.readBytes(n.dataPa, 4 * 4096)).containsOnly(1);
            // 4 pages, each 4 × (4 + 1) + 4 = 24 reads, plus root, context, PASID dir and entry once
            assertThat(bed.unit.stats().tableReads()).isEqualTo(4 * 24 + 4);
            assertThat(bed.unit.stats().nestedWalkCacheHits()).isZero();
        }
    }

    @Test
    void nestedFaultsNameTheStage() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            Nested n = new Nested(bed, 0x5555_0000_0000L, 2, false);
            DmaTestDevice dev = bed.device(RID);
            // the data GPA's stage-2 mapping goes away: final-stage SS fault
            n.ss.unmap(n.dataGpa + 4096, 4096);
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).isEqualTo(FaultReason.SS_PERMISSION.code());
            // the FS root's stage-2 mapping goes away (and the nested walk cache learns it): nested read-blocked fault
            n.ss.unmap(n.fsRootGpa, 4096);
            bed.submit(InvDesc.iotlb(InvDesc.G_DOMAIN, DID, 0, 0, false));
            assertThat(dev.read(4, 0x6666_0000_0000L, 0, 8)).isEqualTo(FaultReason.NESTED_FS_READ_BLOCKED.code());
            assertThat(bed.takeFaults()).extracting(FaultRecord::reason)
                    .containsExactlyInAnyOrder(FaultReason.SS_PERMISSION, FaultReason.NESTED_FS_READ_BLOCKED);
        }
    }

    @Test
    void secondStageDirtyIsSetOnlyOnWritesWithSsade() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(2 * 4096, 4096);
            ss.map(0x10_0000, pa, 2 * 4096, Prot.READ_WRITE);
            long dir = bed.scalableContext(RID, 0);
            bed.pasidEntry(dir, 0, PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, PasidEntry.PGTT_SECOND_STAGE, true), DID, 0));
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(Translator.NO_PASID, 0x10_0000, 0, 8)).isZero();
            assertThat(dev.write(Translator.NO_PASID, 0x10_1000, 0, 8)).isZero();
            long slot0 = leafSlot(bed.memory, new VtdSecondStage(4), ss.rootAddress(), 0x10_0000);
            long slot1 = leafSlot(bed.memory, new VtdSecondStage(4), ss.rootAddress(), 0x10_1000);
            assertThat(bed.memory.read64(slot0) & (VtdSecondStage.A | VtdSecondStage.D)).isEqualTo(VtdSecondStage.A);
            assertThat(bed.memory.read64(slot1) & (VtdSecondStage.A | VtdSecondStage.D)).isEqualTo(VtdSecondStage.A | VtdSecondStage.D);
            // A write through the IOTLB entry a read filled still dirties the page.
            assertThat(dev.write(Translator.NO_PASID, 0x10_0000, 0, 8)).isZero();
            assertThat(bed.memory.read64(slot0) & VtdSecondStage.D).isEqualTo(VtdSecondStage.D);
        }
    }

    @Test
    void translationDisabledPassesDmaUntranslated() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_QIE);
            assertThat(bed.unit.read32(VtdRegs.GSTS) & VtdRegs.GCMD_TE).isZero();
            long pa = bed.memory.allocateFrame();
            assertThat(bed.device(0x0900).fill(Translator.NO_PASID, pa, 4096, (byte) 3)).isZero();
            assertThat(bed.memory.readBytes(pa, 4096)).containsOnly(3);
        }
    }

    /** {@return the physical address of the leaf entry translating {@code iova} (4 KiB leaves, tables with HPAs)} */
    static long leafSlot(PhysicalMemory memory, PageTableFormat format, long root, long iova) {
        long table = root;
        for (int level = format.topLevel(); ; level--) {
            long slot = table + ((long) format.index(iova, level) << 3);
            if (level == 0) {
                return slot;
            }
            table = format.tableAddress(memory.read64(slot));
        }
    }
}
