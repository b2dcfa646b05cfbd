package dev.jiommu.driver.vtd;

import dev.jiommu.errno.Errno;
import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.hwinfo.VtdHwInfo;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.iommufd.IovaRange;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.util.List;

import static dev.jiommu.driver.vtd.VtdIommufdFixture.USER_VA;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * iommufd end to end over the VT-d driver and the emulated unit: bind, IOAS map, attach, DMA from
 * the test device, unmap, DMA faults; nested HWPTs with a user stage 1 and HWPT_INVALIDATE; dirty
 * tracking after device writes.
 */
class VtdIommufdTest {
    static final int RID = 0x0018; // 00:03.0
    static final int RW = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    static VtdConfig config(boolean scalable) {
        return scalable ? VtdConfig.scalable() : VtdConfig.qemuDefault();
    }

    static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 13 + seed);
        }
        return b;
    }

    static void load(DmaTestDevice dma, byte[] data) {
        dma.buffer().asSlice(0, data.length).copyFrom(MemorySegment.ofArray(data));
    }

    @Test
    void hwInfoReportsTheUnitsCapabilityRegisters() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.PLAIN);
            Iommufd.HwInfo info = f.ctx.getHwInfo(d.devId(), 0, 0);
            assertThat(info.dataType()).isEqualTo(VtdHwInfo.TYPE);
            VtdHwInfo vtd = VtdHwInfo.parse(info.data());
            assertThat(vtd.capReg()).isEqualTo(VtdConfig.scalable().cap().raw());
            assertThat(vtd.ecapReg()).isEqualTo(VtdConfig.scalable().ecap().raw());
            assertThat(vtd.flags()).isEqualTo(VtdHwInfo.FLAG_ERRATA_772415_SPR17);
            assertThat(info.maxPasidLog2()).isEqualTo(20);
            assertThat(info.capabilities() & Iommufd.HW_CAP_DIRTY_TRACKING).isNotZero();
            assertThat(info.capabilities() & Iommufd.HW_CAP_PCI_ATS_NOT_SUPPORTED).isNotZero();
            assertThatThrownBy(() -> f.ctx.getHwInfo(d.devId(), Iommufd.HW_INFO_FLAG_INPUT_TYPE, 2))
                    .isInstanceOf(IommufdException.class).extracting(e -> ((IommufdException) e).errno()).isEqualTo(Errno.EOPNOTSUPP);
        }
    }

    /**
     * What the reference kernel reports for a real device behind QEMU's intel-iommu (TCG, q35,
     * intremap=on), as its VfioCdevTest printed it: {@code cap 0x00d2008c22260206 ecap 0xf00f4a
     * flags 0x1 max_pasid_log2 0 capabilities 0x8}, IOVA ranges {@code [0x0, 0xfedfffff],
     * [0xfef00000, 0x7fffffffff]} alignment 4096.
     */
    @Test
    void qemuDefaultUnitReportsQemusIovaRanges() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.qemuDefault())) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            assertThat(f.ctx.ioasIovaRanges(ioas).ranges()).containsExactly(new IovaRange(0, 0xfedf_ffffL),
                    new IovaRange(0xfef0_0000L, 0x7f_ffff_ffffL));
            assertThat(f.ctx.ioasIovaRanges(ioas).iovaAlignment()).isEqualTo(4096);
            Iommufd.HwInfo info = f.ctx.getHwInfo(d.devId(), 0, 0);
            assertThat(info.dataType()).isEqualTo(VtdHwInfo.TYPE);
            assertThat(VtdHwInfo.parse(info.data())).isEqualTo(new VtdHwInfo(1, 0x00d2_008c_2226_0206L, 0xf0_0f4aL));
            assertThat(info.maxPasidLog2()).isZero();
            assertThat(info.capabilities()).isEqualTo(Iommufd.HW_CAP_PCI_ATS_NOT_SUPPORTED);
            assertThatThrownBy(() -> f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, d.devId(), ioas, 0, null, 0))
                    .isInstanceOf(IommufdException.class).extracting(e -> ((IommufdException) e).errno()).isEqualTo(Errno.EOPNOTSUPP);
        }
    }

    @ParameterizedTest(name = "scalable={0}")
    @ValueSource(booleans = {false, true})
    void mapAttachDmaUnmapFault(boolean scalable) {
        try (VtdIommufdFixture f = new VtdIommufdFixture(config(scalable))) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            f.ctx.ioasMap(ioas, RW, USER_VA, 16 * 4096, 0x10_0000);
            int hwpt = f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            byte[] data = pattern(5 * 4096 + 100, 1);
            load(d.dma(), data);
            assertThat(d.dma().write(Translator.NO_PASID, 0x10_0000 + 300, 0, data.length)).isZero();
            assertThat(f.user.read(USER_VA + 300, data.length)).isEqualTo(data);
            assertThat(d.dma().compare(Translator.NO_PASID, 0x10_0000 + 300, data)).isZero();

            f.ctx.ioasUnmap(ioas, 0x10_0000, 16 * 4096);
            int fault = d.dma().read(Translator.NO_PASID, 0x10_2000, 0, 8);
            assertThat(fault).isEqualTo(scalable ? FaultReason.SS_PERMISSION.code() : FaultReason.READ.code());
            List<FaultRecord> log = f.driver.faultLog();
            assertThat(log).hasSize(1);
            assertThat(log.getFirst().sid()).isEqualTo(RID);
            assertThat(log.getFirst().address()).isEqualTo(0x10_2000);

            // Map again somewhere else: a fresh mapping is visible without any invalidation.
            f.ctx.ioasMap(ioas, RW, USER_VA + 0x10_0000, 4096, 0x20_0000);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x20_0000, 4096, (byte) 0x77)).isZero();
            assertThat(f.user.read(USER_VA + 0x10_0000, 4096)).containsOnly(0x77);
            assertThat(hwpt).isPositive();
            f.ctx.detachDevice(d.devId(), IommuDriver.NO_PASID);
            assertThat(d.dma().read(Translator.NO_PASID, 0x20_0000, 0, 8)).isNotZero();
        }
    }

    /** Under caching mode the unit caches not-present entries: the driver flushes after each map (iotlb_sync_map). */
    @ParameterizedTest(name = "scalable={0}")
    @ValueSource(booleans = {false, true})
    void cachingModeMapsAreVisibleBecauseTheDriverFlushes(boolean scalable) {
        try (VtdIommufdFixture f = new VtdIommufdFixture(config(scalable).withCachingMode(true))) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            f.ctx.ioasMap(ioas, RW, USER_VA, 4096, 0x10_0000);
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            assertThat(d.dma().read(Translator.NO_PASID, 0x10_1000, 0, 8)).isNotZero();
            long before = f.unit.stats().descriptors();
            f.ctx.ioasMap(ioas, RW, USER_VA + 4096, 4096, 0x10_1000);
            assertThat(f.unit.stats().descriptors()).as("a flush after the map").isGreaterThan(before);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_1000, 8, (byte) 7)).isZero();
            assertThat(f.user.read(USER_VA + 4096, 8)).containsOnly(7);
        }
    }

    @ParameterizedTest(name = "scalable={0}")
    @ValueSource(booleans = {false, true})
    void replaceSwitchesTheDeviceToTheNewTable(boolean scalable) {
        try (VtdIommufdFixture f = new VtdIommufdFixture(config(scalable))) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioasA = f.ctx.ioasAlloc();
            int ioasB = f.ctx.ioasAlloc();
            f.ctx.ioasMap(ioasA, RW, USER_VA, 4096, 0x10_0000);
            f.ctx.ioasMap(ioasB, RW, USER_VA + 4096, 4096, 0x10_0000);
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioasA);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_0000, 64, (byte) 1)).isZero();
            f.ctx.replaceDevice(d.devId(), IommuDriver.NO_PASID, ioasB);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_0000, 64, (byte) 2)).isZero();
            assertThat(f.user.read(USER_VA, 64)).containsOnly(1);
            assertThat(f.user.read(USER_VA + 4096, 64)).containsOnly(2);
        }
    }

    @Test
    void firstStagePagingDomainWhenTheDriverPrefersIt() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable(), new VtdDriver.Options(true))) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            for (int i = 0; i < 4; i++) {
                f.ctx.ioasMap(ioas, RW, USER_VA + i * 4096L, 4096, 0x4000_0000L + i * 4096L);
            }
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x4000_1000L, 4096, (byte) 9)).isZero();
            assertThat(f.user.read(USER_VA + 4096, 4096)).containsOnly(9);
            f.ctx.ioasUnmap(ioas, 0x4000_1000L, 4096);
            assertThat(d.dma().read(Translator.NO_PASID, 0x4000_1000L, 0, 8)).isEqualTo(FaultReason.FS_ENTRY_NOT_PRESENT.code());
        }
    }

    @Test
    void pasidAttachTranslatesRequestsWithThatPasid() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.PLAIN);
            int ioas = f.ctx.ioasAlloc();
            f.ctx.ioasMap(ioas, RW, USER_VA, 4096, 0x10_0000);
            int hwpt = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_PASID, d.devId(), ioas, 0, null, 0);
            f.ctx.attachDevice(d.devId(), 77, hwpt);
            assertThat(d.dma().fill(77, 0x10_0000, 64, (byte) 5)).isZero();
            assertThat(f.user.read(USER_VA, 64)).containsOnly(5);
            assertThat(d.dma().fill(78, 0x10_0000, 64, (byte) 6)).isEqualTo(FaultReason.PASID_ENTRY_NOT_PRESENT.code());
            assertErrno(Errno.EINVAL, () -> f.ctx.attachDevice(d.devId(), 0, hwpt));
            f.ctx.detachDevice(d.devId(), 77);
            assertThat(d.dma().fill(77, 0x10_0000, 64, (byte) 6)).isEqualTo(FaultReason.PASID_ENTRY_NOT_PRESENT.code());
            assertThat(f.user.read(USER_VA, 64)).containsOnly(5);
        }
    }

    /** A guest: its RAM is user memory mapped in the IOAS at GPA = IOVA, its stage-1 table built in that RAM. */
    static final class Guest {
        static final long GPA_BASE = 0x8000_0000L;
        final VtdIommufdFixture f;
        long nextGpa = GPA_BASE;
        final long rootGpa;

        Guest(VtdIommufdFixture f, int ioas) {
            this.f = f;
            f.ctx.ioasMap(ioas, RW, USER_VA, 8L << 20, GPA_BASE);
            rootGpa = allocatePage();
        }

        long va(long gpa) {
            return USER_VA + (gpa - GPA_BASE);
        }

        long allocatePage() {
            long gpa = nextGpa;
            nextGpa += 4096;
            f.user.write(va(gpa), new byte[4096]);
            return gpa;
        }

        long read64(long gpa) {
            return java.nio.ByteBuffer.wrap(f.user.read(va(gpa), 8)).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        }

        void write64(long gpa, long value) {
            f.user.write(va(gpa), VtdIommufdFixture.le64(value));
        }

        /** Maps one 4 KiB guest IOVA page to {@code dataGpa} in the guest's 4-level stage 1, as the guest's own driver would. */
        void map(long iova, long dataGpa) {
            X86_64 format = new X86_64(4, true);
            long table = rootGpa;
            for (int level = 3; level > 0; level--) {
                long slot = table + ((long) format.index(iova, level) << 3);
                long entry = read64(slot);
                if ((entry & X86_64.P) == 0) {
                    long child = allocatePage();
                    entry = format.tableEntry(child, level);
                    write64(slot, entry);
                }
                table = format.tableAddress(entry);
            }
            write64(table + ((long) format.index(iova, 0) << 3), X86_64.P | X86_64.RW | X86_64.US | X86_64.A | X86_64.D | dataGpa);
        }
    }

    @Test
    void nestedHwptTranslatesTheUsersStageOneAndNeedsItsInvalidations() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            Guest guest = new Guest(f, ioas);
            int parent = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, d.devId(), ioas, 0, null, 0);
            long dataA = guest.allocatePage();
            long dataB = guest.allocatePage();
            guest.map(0x1234_5000L, dataA);
            int nested = f.ctx.hwptAlloc(0, d.devId(), parent, VtdNestedDomain.DATA_VTD_S1,
                    VtdIommufdFixture.vtdS1(0, guest.rootGpa, 48), 0);
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, nested);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x1234_5000L, 4096, (byte) 0xa)).isZero();
            assertThat(f.user.read(guest.va(dataA), 4096)).containsOnly(0xa);

            // The guest points the page elsewhere: stale until it invalidates through HWPT_INVALIDATE.
            guest.map(0x1234_5000L, dataB);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x1234_5000L, 4096, (byte) 0xb)).isZero();
            assertThat(f.user.read(guest.va(dataA), 4096)).containsOnly(0xb);
            byte[] entry = VtdIommufdFixture.vtdS1Invalidate(0x1234_5000L, 1, VtdNestedDomain.INV_FLAGS_LEAF);
            assertThat(f.ctx.hwptInvalidate(nested, VtdNestedDomain.INVALIDATE_DATA_VTD_S1, 24, 1, entry)).isEqualTo(1);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x1234_5000L, 4096, (byte) 0xc)).isZero();
            assertThat(f.user.read(guest.va(dataB), 4096)).containsOnly(0xc);
            assertThat(f.user.read(guest.va(dataA), 4096)).containsOnly(0xb);

            // A page the guest did not map: a first-stage fault, recorded by the host unit.
            assertThat(d.dma().read(Translator.NO_PASID, 0x9999_0000L, 0, 8)).isEqualTo(FaultReason.FS_ENTRY_NOT_PRESENT.code());
            // The host unmaps guest RAM under the stage 1: the parent's unmap flushes the nested entries too.
            f.ctx.ioasUnmap(ioas, Guest.GPA_BASE, 8L << 20);
            assertThat(d.dma().read(Translator.NO_PASID, 0x1234_5000L, 0, 8)).isEqualTo(FaultReason.NESTED_FS_READ_BLOCKED.code());
        }
    }

    @Test
    void nestedAllocationAndInvalidationRefuseBadUserData() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            int parent = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, d.devId(), ioas, 0, null, 0);
            int plain = f.ctx.hwptAlloc(0, d.devId(), ioas, 0, null, 0);
            assertErrno(Errno.EINVAL, () -> f.ctx.hwptAlloc(0, d.devId(), parent, 1, VtdIommufdFixture.vtdS1(0, 0x1000, 39), 0));
            assertErrno(Errno.EOPNOTSUPP, () -> f.ctx.hwptAlloc(0, d.devId(), parent, 1, VtdIommufdFixture.vtdS1(1L << 5, 0x1000, 48), 0));
            assertErrno(Errno.EINVAL, () -> f.ctx.hwptAlloc(0, d.devId(), plain, 1, VtdIommufdFixture.vtdS1(0, 0x1000, 48), 0));
            int nested = f.ctx.hwptAlloc(0, d.devId(), parent, 1, VtdIommufdFixture.vtdS1(0, 0x1000, 48), 0);
            byte[] two = new byte[48];
            System.arraycopy(VtdIommufdFixture.vtdS1Invalidate(0, 1, 0), 0, two, 0, 24);
            System.arraycopy(VtdIommufdFixture.vtdS1Invalidate(0x1001, 1, 0), 0, two, 24, 24);
            assertThatThrownBy(() -> f.ctx.hwptInvalidate(nested, 0, 24, 2, two)).isInstanceOf(IommufdException.class)
                    .satisfies(e -> assertThat(((IommufdException) e).errno()).isEqualTo(Errno.EINVAL));
            assertErrno(Errno.EOPNOTSUPP, () -> f.ctx.hwptInvalidate(nested, 0, 24, 1, VtdIommufdFixture.vtdS1Invalidate(0, 1, 2)));
            assertThat(f.ctx.hwptInvalidate(nested, 0, 24, 1, VtdIommufdFixture.vtdS1Invalidate(0, -1L, 0))).isEqualTo(1);
            // ERRATA_772415_SPR17: a nest parent takes no read-only mapping.
            assertErrno(Errno.EINVAL, () -> f.ctx.ioasMap(ioas, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE, USER_VA, 4096, 0x10_0000));
        }
    }

    static void assertErrno(Errno errno, org.assertj.core.api.ThrowableAssert.ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOf(IommufdException.class).satisfies(e -> assertThat(((IommufdException) e).errno()).isEqualTo(errno));
    }

    @Test
    void dirtyBitmapShowsWhatTheDeviceWrote() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int ioas = f.ctx.ioasAlloc();
            f.ctx.ioasMap(ioas, RW, USER_VA, 16 * 4096, 0x10_0000);
            int hwpt = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, d.devId(), ioas, 0, null, 0);
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, hwpt);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_0000, 4096, (byte) 1)).isZero();
            f.ctx.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
            assertThat(d.dma().read(Translator.NO_PASID, 0x10_1000, 0, 8)).isZero();
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_2000, 2 * 4096, (byte) 2)).isZero();
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_0000, 8, (byte) 3)).as("through an IOTLB entry filled before tracking").isZero();
            DirtyBitmap bitmap = f.ctx.hwptGetDirtyBitmap(hwpt, 0, 0x10_0000, 16 * 4096, 4096);
            assertThat(setBits(bitmap)).containsExactly(0L, 2L, 3L);
            assertThat(setBits(f.ctx.hwptGetDirtyBitmap(hwpt, 0, 0x10_0000, 16 * 4096, 4096))).as("cleared").isEmpty();
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_3000, 8, (byte) 4)).isZero();
            assertThat(setBits(f.ctx.hwptGetDirtyBitmap(hwpt, Iommufd.GET_DIRTY_BITMAP_NO_CLEAR, 0x10_0000, 16 * 4096, 4096)))
                    .as("written again after the clear: the clear flushed the IOTLB").containsExactly(3L);
        }
    }

    static List<Long> setBits(DirtyBitmap bitmap) {
        List<Long> bits = new java.util.ArrayList<>();
        for (long i = bitmap.nextSetBit(0); i >= 0; i = bitmap.nextSetBit(i + 1)) {
            bits.add(i);
        }
        return bits;
    }

    @Test
    void atsDeviceTlbIsFlushedOnUnmap() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 0, DmaTestDevice.Options.ats(32));
            Iommufd.HwInfo info = f.ctx.getHwInfo(d.devId(), 0, 0);
            assertThat(info.capabilities() & Iommufd.HW_CAP_PCI_ATS_NOT_SUPPORTED).isZero();
            int ioas = f.ctx.ioasAlloc();
            for (int i = 0; i < 4; i++) {
                f.ctx.ioasMap(ioas, RW, USER_VA + i * 4096L, 4096, 0x10_0000 + i * 4096L);
            }
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            assertThat(d.dma().fill(Translator.NO_PASID, 0x10_0000, 4 * 4096, (byte) 1)).isZero();
            assertThat(d.dma().atcSize()).isEqualTo(4);
            f.ctx.ioasUnmap(ioas, 0x10_1000, 4096);
            assertThat(d.dma().atcInvalidations()).isPositive();
            assertThat(d.dma().read(Translator.NO_PASID, 0x10_1000, 0, 8)).isEqualTo(FaultReason.SS_PERMISSION.code());
            assertThat(d.dma().read(Translator.NO_PASID, 0x10_2000, 0, 8)).isZero();
        }
    }
}
