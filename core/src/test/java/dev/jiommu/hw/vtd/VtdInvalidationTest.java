package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Cache coherency as software sees it: for every invalidation, the stale translation survives
 * without it and is gone with it. Caches are dropped only by invalidations.
 */
class VtdInvalidationTest {
    static final int RID = 0x0310;
    static final int DID = 5;

    /** A second-stage domain mapped at 0x10_0000 for RID, legacy or scalable (RID_PASID 0). */
    static final class SsFixture {
        final VtdTestBed bed;
        final PageTable ss;
        final long pa;
        final DmaTestDevice dev;

        SsFixture(VtdTestBed bed) {
            this.bed = bed;
            ss = new PageTable(new VtdSecondStage(4), bed.memory);
            pa = bed.memory.allocate(16 * 4096, 4096);
            ss.map(0x10_0000, pa, 16 * 4096, Prot.READ_WRITE);
            if (bed.scalable) {
                long dir = bed.scalableContext(RID, 0);
                bed.pasidEntry(dir, 0, PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, PasidEntry.PGTT_SECOND_STAGE, false), DID, 0));
            } else {
                bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            }
            dev = bed.device(RID);
        }

        boolean readable(long iova) {
            return dev.read(Translator.NO_PASID, iova, 0, 8) == 0;
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {InvDesc.G_GLOBAL, InvDesc.G_DOMAIN, InvDesc.G_DEVICE_OR_PAGE})
    void iotlbInvalidationDropsTheStaleEntry(int granularity) {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_3000)).isTrue();
            f.ss.unmap(0x10_3000, 4096);
            assertThat(f.readable(0x10_3000)).as("stale IOTLB entry survives without invalidation").isTrue();
            bed.submit(InvDesc.iotlb(InvDesc.G_GLOBAL == granularity ? 1 : granularity, DID + 1, 0x10_3000, 0, false));
            assertThat(f.readable(0x10_3000)).as("another domain's invalidation").isEqualTo(granularity != InvDesc.G_GLOBAL);
            bed.submit(InvDesc.iotlb(granularity, DID, 0x10_3000, 0, false));
            assertThat(f.readable(0x10_3000)).isFalse();
            assertThat(bed.takeFaults()).hasSize(granularity == InvDesc.G_GLOBAL ? 2 : 1);
        }
    }

    @Test
    void pageSelectiveInvalidationHonoursTheAddressMask() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            for (int i = 0; i < 16; i++) {
                assertThat(f.readable(0x10_0000 + i * 4096L)).isTrue();
            }
            f.ss.unmap(0x10_0000, 16 * 4096);
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, 0x10_4000, 2, false)); // pages 4..7
            for (int i = 0; i < 16; i++) {
                assertThat(f.readable(0x10_0000 + i * 4096L)).as("page %d", i).isEqualTo(i < 4 || i >= 8);
            }
        }
    }

    /** QEMU once kept stale translations when a page-selective range covered a whole large leaf. */
    @ParameterizedTest
    @ValueSource(ints = {21, 30})
    void pageSelectiveInvalidationCoveringAWholeLargeLeafDropsIt(int shift) {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long size = 1L << shift;
            long pa = bed.memory.allocate(size, size);
            long iova = 4 * size;
            ss.map(iova, pa, size, Prot.READ_WRITE);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            DmaTestDevice dev = bed.device(RID);
            long[] probes = {iova, iova + size / 2, iova + size - 4096};
            for (long p : probes) {
                assertThat(dev.read(Translator.NO_PASID, p, 0, 8)).isZero();
            }
            ss.unmap(iova, size);
            for (long p : probes) {
                assertThat(dev.read(Translator.NO_PASID, p, 0, 8)).as("stale before invalidation").isZero();
            }
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, iova, shift - 12, false));
            for (long p : probes) {
                assertThat(dev.read(Translator.NO_PASID, p, 0, 8)).isEqualTo(FaultReason.READ.code());
            }
        }
    }

    @Test
    void pageSelectiveInvalidationOfOnePageInsideALargeLeafDropsTheLeaf() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(1L << 21, 1L << 21);
            ss.map(0x40_0000, pa, 1L << 21, Prot.READ_WRITE);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID);
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(Translator.NO_PASID, 0x40_0000, 0, 8)).isZero();
            ss.unmap(0x40_0000, 1L << 21);
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, 0x5f_f000, 0, false));
            assertThat(dev.read(Translator.NO_PASID, 0x40_0000, 0, 8)).isEqualTo(FaultReason.READ.code());
        }
    }

    @Test
    void contextCacheInvalidationIsNeededToSeeANewContext() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            // Switch the device to another domain whose table maps nothing.
            PageTable empty = new PageTable(new VtdSecondStage(4), bed.memory);
            bed.legacyContext(RID, empty.rootAddress(), ContextEntry.TT_UNTRANSLATED, 2, DID + 1);
            assertThat(f.readable(0x10_0000)).as("stale context and IOTLB").isTrue();
            bed.submit(InvDesc.contextCache(InvDesc.G_DEVICE_OR_PAGE, DID, RID ^ 1, 0));
            assertThat(f.readable(0x10_0000)).as("another function's invalidation").isTrue();
            bed.submit(InvDesc.contextCache(InvDesc.G_DEVICE_OR_PAGE, DID, RID, 0));
            assertThat(f.readable(0x10_0000)).as("new context, new DID: the old IOTLB entry no longer matches").isFalse();
        }
    }

    @Test
    void contextCacheInvalidationWithFunctionMaskCoversTheFunctions() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            bed.legacyContext(RID, 0, ContextEntry.TT_PASS_THROUGH, 2, DID + 1);
            bed.submit(InvDesc.contextCache(InvDesc.G_DEVICE_OR_PAGE, 0, RID | 7, 3));
            long pa = bed.memory.allocateFrame();
            assertThat(f.dev.fill(Translator.NO_PASID, pa, 8, (byte) 4)).isZero();
            assertThat(bed.memory.readBytes(pa, 8)).containsOnly(4);
        }
    }

    @Test
    void registerBasedInvalidationWorksToo() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_2000)).isTrue();
            f.ss.unmap(0x10_2000, 4096);
            assertThat(f.readable(0x10_2000)).isTrue();
            bed.unit.write64(VtdRegs.IVA, 0x10_2000);
            bed.unit.write64(VtdRegs.IOTLB, VtdRegs.IOTLB_IVT | (3L << VtdRegs.IOTLB_IIRG_SHIFT) | ((long) DID << VtdRegs.IOTLB_DID_SHIFT));
            assertThat(bed.unit.read64(VtdRegs.IOTLB) & VtdRegs.IOTLB_IVT).isZero();
            assertThat((bed.unit.read64(VtdRegs.IOTLB) >>> VtdRegs.IOTLB_IAIG_SHIFT) & 3).isEqualTo(3);
            assertThat(f.readable(0x10_2000)).isFalse();

            bed.legacyContext(RID, 0, ContextEntry.TT_PASS_THROUGH, 2, DID);
            bed.unit.write64(VtdRegs.CCMD, VtdRegs.CCMD_ICC | (1L << VtdRegs.CCMD_CIRG_SHIFT));
            assertThat(bed.unit.read64(VtdRegs.CCMD) & VtdRegs.CCMD_ICC).isZero();
            long pa = bed.memory.allocateFrame();
            assertThat(f.dev.fill(Translator.NO_PASID, pa, 8, (byte) 4)).isZero();
        }
    }

    @Test
    void pasidCacheInvalidationIsNeededToSeeANewPasidEntry() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            long dir = pasidDirOf(bed);
            PageTable empty = new PageTable(new VtdSecondStage(4), bed.memory);
            bed.pasidEntry(dir, 0, PasidEntry.of(PasidEntry.q0(empty.rootAddress(), 2, PasidEntry.PGTT_SECOND_STAGE, false), DID + 1, 0));
            assertThat(f.readable(0x10_0000)).isTrue();
            bed.submit(InvDesc.pasidCache(InvDesc.PCG_PASID, DID, 1));
            assertThat(f.readable(0x10_0000)).as("another PASID's invalidation").isTrue();
            bed.submit(InvDesc.pasidCache(InvDesc.PCG_PASID, DID, 0));
            assertThat(f.readable(0x10_0000)).isFalse();
        }
    }

    static long pasidDirOf(VtdTestBed bed) {
        long contextTable = bed.memory.read64(bed.rootTable + (RID >>> 8) * 16L) & ~0xfffL;
        return bed.memory.read64(contextTable + (RID & 0x7f) * 32L) & ~0xfffL;
    }

    /** A first-stage PASID 9 mapping at 0x7000_0000 (8 pages). */
    static final class FsFixture {
        final PageTable fs;
        final DmaTestDevice dev;

        FsFixture(VtdTestBed bed) {
            fs = new PageTable(new X86_64(4, true), bed.memory);
            long pa = bed.memory.allocate(8 * 4096, 4096);
            fs.map(0x7000_0000L, pa, 8 * 4096, Prot.READ_WRITE);
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE);
            bed.pasidEntry(dir, 9, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), DID,
                    PasidEntry.q2(fs.rootAddress(), 0, 0)));
            dev = bed.device(RID);
        }

        boolean readable(long iova) {
            return dev.read(9, iova, 0, 8) == 0;
        }
    }

    @Test
    void pasidIotlbInvalidationDropsFirstStageEntries() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            FsFixture f = new FsFixture(bed);
            assertThat(f.readable(0x7000_1000L)).isTrue();
            assertThat(f.readable(0x7000_2000L)).isTrue();
            f.fs.unmap(0x7000_1000L, 2 * 4096);
            assertThat(f.readable(0x7000_1000L)).isTrue();
            bed.submit(InvDesc.pasidIotlb(InvDesc.PG_PAGE, DID, 8, 0x7000_1000L, 0, false));
            assertThat(f.readable(0x7000_1000L)).as("other PASID").isTrue();
            bed.submit(InvDesc.pasidIotlb(InvDesc.PG_PAGE, DID, 9, 0x7000_1000L, 0, false));
            assertThat(f.readable(0x7000_1000L)).isFalse();
            assertThat(f.readable(0x7000_2000L)).as("outside the page-selective range").isTrue();
            bed.submit(InvDesc.pasidIotlb(InvDesc.PG_PASID, DID, 9, 0, 0, false));
            assertThat(f.readable(0x7000_2000L)).isFalse();
        }
    }

    @Test
    void iotlbDescriptorOfTheDomainDropsFirstStageEntriesAtAnyAddress() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            FsFixture f = new FsFixture(bed);
            assertThat(f.readable(0x7000_3000L)).isTrue();
            f.fs.unmap(0x7000_3000L, 4096);
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, 0x1234_5000L, 0, false));
            assertThat(f.readable(0x7000_3000L)).isFalse();
        }
    }

    @Test
    void pasidIotlbInvalidationLeavesSecondStageEntries() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            f.ss.unmap(0x10_0000, 4096);
            bed.submit(InvDesc.pasidIotlb(InvDesc.PG_PASID, DID, 0, 0, 0, false));
            assertThat(f.readable(0x10_0000)).as("type 6 never touches second-stage entries").isTrue();
            bed.submit(InvDesc.iotlb(InvDesc.G_DOMAIN, DID, 0, 0, false));
            assertThat(f.readable(0x10_0000)).isFalse();
        }
    }

    @Test
    void nestedEntriesAreDroppedByTheParentsIotlbInvalidation() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            VtdScenarioTest.Nested n = new VtdScenarioTest.Nested(bed, 0x5555_0000_0000L, 2, false);
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).isZero();
            n.ss.unmap(n.dataGpa + 4096, 4096); // the stage 2 changes under a nested translation
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).isZero();
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, n.dataGpa + 4096, 0, false));
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).isEqualTo(FaultReason.SS_PERMISSION.code());
        }
    }

    @Test
    void nestedWalkCacheKeepsAStaleStageTwoTablePageUntilTheDomainsIotlbInvalidation() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            VtdScenarioTest.Nested n = new VtdScenarioTest.Nested(bed, 0x5555_0000_0000L, 2, false);
            DmaTestDevice dev = bed.device(RID);
            assertThat(dev.read(4, 0x5555_0000_0000L, 0, 8)).isZero();
            // The stage 2 drops the first stage's root page; a new page of the same first stage
            // still walks through the cached stage-2 translation of that table page.
            n.ss.unmap(n.fsRootGpa, 4096);
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).as("stale nested walk cache").isZero();
            bed.submit(InvDesc.pasidIotlb(InvDesc.PG_PASID, DID, 4, 0, 0, false));
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).as("type 6 leaves the stage-2 side").isZero();
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, n.fsRootGpa, 0, false));
            assertThat(dev.read(4, 0x5555_0000_1000L, 0, 8)).isEqualTo(FaultReason.NESTED_FS_READ_BLOCKED.code());
        }
    }

    @Test
    void deviceTlbInvalidationReachesTheDevice() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            PageTable ss = new PageTable(new VtdSecondStage(4), bed.memory);
            long pa = bed.memory.allocate(4 * 4096, 4096);
            ss.map(0x10_0000, pa, 4 * 4096, Prot.READ_WRITE);
            bed.legacyContext(RID, ss.rootAddress(), ContextEntry.TT_DEVICE_TLB, 2, DID);
            DmaTestDevice dev = new DmaTestDevice("ats", PciRequesterId.of(RID), bed.memory, bed.unit, DmaTestDevice.Options.ats(64), 1 << 16);
            assertThat(dev.read(Translator.NO_PASID, 0x10_0000, 0, 4 * 4096)).isZero();
            assertThat(dev.atcSize()).isEqualTo(4);
            ss.unmap(0x10_0000, 4 * 4096);
            bed.submit(InvDesc.iotlb(InvDesc.G_DOMAIN, DID, 0, 0, false));
            assertThat(dev.read(Translator.NO_PASID, 0x10_1000, 0, 8)).as("the device-TLB still translates").isZero();
            bed.submit(InvDesc.deviceTlb(RID, 0x10_0000, 1)); // two pages: 0x10_0000 and 0x10_1000
            assertThat(dev.atcSize()).isEqualTo(2);
            assertThat(dev.read(Translator.NO_PASID, 0x10_1000, 0, 8)).isEqualTo(FaultReason.READ.code());
            assertThat(dev.read(Translator.NO_PASID, 0x10_2000, 0, 8)).isZero();
            assertThat(bed.takeFaults()).as("a failed translation request is not a recorded fault").isEmpty();
        }
    }

    @Test
    void pasidBasedDeviceTlbInvalidationDropsOnlyThatPasid() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            PageTable fs = new PageTable(new X86_64(4, true), bed.memory);
            long pa = bed.memory.allocate(2 * 4096, 4096);
            fs.map(0x7000_0000L, pa, 2 * 4096, Prot.READ_WRITE);
            long dir = bed.scalableContext(RID, ScalableContextEntry.PASIDE | ScalableContextEntry.DTE);
            for (int pasid : new int[] {9, 10}) {
                bed.pasidEntry(dir, pasid, PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), DID,
                        PasidEntry.q2(fs.rootAddress(), 0, 0)));
            }
            DmaTestDevice dev = new DmaTestDevice("ats", PciRequesterId.of(RID), bed.memory, bed.unit, DmaTestDevice.Options.ats(64), 1 << 16);
            assertThat(dev.read(9, 0x7000_0000L, 0, 2 * 4096)).isZero();
            assertThat(dev.read(10, 0x7000_0000L, 0, 2 * 4096)).isZero();
            assertThat(dev.atcSize()).isEqualTo(4);
            bed.submit(InvDesc.pasidDeviceTlb(RID, 9, false, 0x7000_0000L, 0));
            assertThat(dev.atcSize()).as("one page of PASID 9").isEqualTo(3);
            bed.submit(InvDesc.pasidDeviceTlb(RID, 0, true, 0x7000_1000L, 0));
            assertThat(dev.atcSize()).as("that page of every PASID").isEqualTo(1);
            assertThat(dev.atcFills()).isEqualTo(4);
        }
    }

    @Test
    void pasidCacheDomainAndGlobalInvalidation() {
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            long dir = pasidDirOf(bed);
            bed.pasidEntry(dir, 0, PasidEntry.of(0, 0, 0)); // cleared without telling the hardware
            assertThat(f.readable(0x10_0000)).isTrue();
            bed.submit(InvDesc.pasidCache(InvDesc.PCG_DOMAIN, DID + 1, 0));
            assertThat(f.readable(0x10_0000)).isTrue();
            bed.submit(InvDesc.pasidCache(InvDesc.PCG_DOMAIN, DID, 0));
            assertThat(f.readable(0x10_0000)).isFalse();
        }
        try (VtdTestBed bed = VtdTestBed.scalable()) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x10_0000)).isTrue();
            bed.pasidEntry(pasidDirOf(bed), 0, PasidEntry.of(0, 0, 0));
            bed.submit(InvDesc.pasidCache(InvDesc.PCG_GLOBAL, 0, 0));
            assertThat(f.readable(0x10_0000)).isFalse();
        }
    }

    @Test
    void atsIsRefusedWithoutDeviceTlbInTheContext() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            SsFixture f = new SsFixture(bed);
            DmaTestDevice ats = new DmaTestDevice("ats", PciRequesterId.of(RID), bed.memory, bed.unit, DmaTestDevice.Options.ats(8), 4096);
            assertThat(ats.read(Translator.NO_PASID, 0x10_0000, 0, 8)).isEqualTo(FaultReason.TRANSLATION_TYPE_BLOCKED.code());
            assertThat(f.readable(0x10_0000)).isTrue();
        }
    }

    @Test
    void invalidDescriptorStopsTheQueueWithIqe() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.submitRaw(InvDesc.iotlb(InvDesc.G_DOMAIN, DID, 0, 0, false), new InvDesc(0xf, 0),
                    InvDesc.iotlb(InvDesc.G_DOMAIN, DID, 0, 0, false));
            assertThat(bed.unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE).isNotZero();
            assertThat(bed.unit.read64(VtdRegs.IQH)).as("IQH at the bad descriptor").isEqualTo(16);
            assertThat(bed.unit.read64(VtdRegs.IQER) & 0xf).isEqualTo(1);
            // Recovery as Linux does: overwrite the bad descriptor, clear IQE, kick the queue.
            bed.memory.write64(bed.queue + 16, InvDesc.iotlb(InvDesc.G_GLOBAL, 0, 0, 0, false).q0());
            bed.memory.write64(bed.queue + 24, 0);
            bed.unit.write32(VtdRegs.FSTS, VtdRegs.FSTS_IQE);
            bed.unit.write64(VtdRegs.IQT, bed.unit.read64(VtdRegs.IQT));
            assertThat(bed.unit.read64(VtdRegs.IQH)).isEqualTo(48);
        }
    }

    @Test
    void waitDescriptorWithInterruptSetsIwc() {
        try (VtdTestBed bed = VtdTestBed.legacy()) {
            bed.unit.write32(VtdRegs.IEADDR, 0xfee0_1000);
            bed.unit.write32(VtdRegs.IEDATA, 0x42);
            bed.unit.write32(VtdRegs.IECTL, 0);
            bed.submitRaw(new InvDesc(InvDesc.TYPE_WAIT | InvDesc.WAIT_IF, 0));
            assertThat(bed.unit.read32(VtdRegs.ICS) & VtdRegs.ICS_IWC).isNotZero();
            assertThat(bed.msis).containsExactly(new long[] {0xfee0_1000L, 0x42});
            bed.unit.write32(VtdRegs.ICS, VtdRegs.ICS_IWC);
            assertThat(bed.unit.read32(VtdRegs.ICS)).isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void cachingModeCachesNotPresentEntriesUntilInvalidated(boolean scalable) {
        try (VtdTestBed bed = new VtdTestBed(VtdConfig.scalable().withCachingMode(true), scalable)) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x20_0000)).isFalse();
            f.ss.map(0x20_0000, f.pa, 4096, Prot.READ_WRITE);
            assertThat(f.readable(0x20_0000)).as("the not-present entry is cached under CM").isFalse();
            bed.submit(InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, DID, 0x20_0000, 0, false));
            assertThat(f.readable(0x20_0000)).isTrue();
        }
        try (VtdTestBed bed = new VtdTestBed(VtdConfig.scalable(), scalable)) {
            SsFixture f = new SsFixture(bed);
            assertThat(f.readable(0x20_0000)).isFalse();
            f.ss.map(0x20_0000, f.pa, 4096, Prot.READ_WRITE);
            assertThat(f.readable(0x20_0000)).as("without CM nothing not-present is cached").isTrue();
        }
    }

    @Test
    void boundedIotlbEvictsButStaysCorrect() {
        try (VtdTestBed bed = new VtdTestBed(VtdConfig.scalable(8, 4, 4), false)) {
            SsFixture f = new SsFixture(bed);
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 16; i++) {
                    assertThat(f.readable(0x10_0000 + i * 4096L)).isTrue();
                }
            }
            VtdStats stats = bed.unit.stats();
            assertThat(stats.iotlbEntries()).isEqualTo(8);
            assertThat(stats.iotlbEvictions()).isPositive();
        }
    }
}
