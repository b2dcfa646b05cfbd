package dev.jiommu.hw.vtd.spec;

import dev.jiommu.hw.vtd.VtdConfig;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Sizes and bit positions of the VT-d spec types against the manual (and Linux's and QEMU's headers). */
class VtdSpecTest {
    @Test
    void sizesMatchSpec() {
        assertThat(RootEntry.SIZE_BYTES).isEqualTo(16);
        assertThat(ContextEntry.SIZE_BYTES).isEqualTo(16);
        assertThat(ScalableContextEntry.SIZE_BYTES).isEqualTo(32);
        assertThat(PasidDirEntry.SIZE_BYTES).isEqualTo(8);
        assertThat(PasidEntry.SIZE_BYTES).isEqualTo(64);
        assertThat(FaultRecord.SIZE_BYTES).isEqualTo(16);
        assertThat(PageRequest.SIZE_BYTES).isEqualTo(32);
        assertThat(4096 / ScalableContextEntry.SIZE_BYTES).isEqualTo(128);
        assertThat(4096 / PasidEntry.SIZE_BYTES).isEqualTo(64);
    }

    @Test
    void qemuDefaultCapabilitiesAreWhatLinuxPrints() {
        VtdConfig qemu = VtdConfig.qemuDefault();
        assertThat(qemu.cap().raw()).isEqualTo(0x00d2_008c_2226_0206L);
        assertThat(qemu.ecap().raw()).isEqualTo(0xf0_0f4aL);
        assertThat(VtdConfig.qemuDefault(true).ecap().raw()).isEqualTo(0xf0_0f5aL);
        CapReg cap = qemu.cap();
        assertThat(cap.mgawBits()).isEqualTo(39);
        assertThat(cap.sagaw()).isEqualTo(CapReg.SAGAW_39);
        assertThat(cap.domainIdBits()).isEqualTo(16);
        assertThat(cap.faultRecordingOffset()).isEqualTo(0x220);
        assertThat(cap.faultRecordCount()).isEqualTo(1);
        assertThat(cap.mamv()).isEqualTo(18);
        assertThat(cap.sllps()).isEqualTo(3);
        assertThat(qemu.ecap().iotlbRegisterOffset()).isEqualTo(0xf0);
        assertThat(qemu.ecap().scalableMode()).isFalse();
    }

    @Test
    void contextEntryFieldsSitWhereTheManualSays() {
        ContextEntry ce = ContextEntry.of(0x1234_5000L, ContextEntry.TT_PASS_THROUGH, 2, 0xabcd);
        assertThat(ce.lo()).isEqualTo(0x1234_5000L | 2 << 2 | 1);
        assertThat(ce.hi()).isEqualTo(0xab_cd02L);
        assertThat(ce.did()).isEqualTo(0xabcd);
        assertThat(ce.aw()).isEqualTo(2);
        assertThat(ce.translationType()).isEqualTo(2);
        assertThat(ce.reservedBitsSet()).isFalse();
        assertThat(new ContextEntry(1L << 4 | 1, 0).reservedBitsSet()).isTrue();
    }

    @Test
    void scalableStructuresFieldsSitWhereTheManualSays() {
        ScalableContextEntry sce = ScalableContextEntry.of(0x7000, 3, ScalableContextEntry.PASIDE | ScalableContextEntry.PRE);
        assertThat(sce.q0()).isEqualTo(0x7000L | 3 << 9 | 1 << 4 | 1 << 3 | 1);
        assertThat(sce.pasidLimit()).isEqualTo(1L << 16);
        PasidEntry pe = PasidEntry.of(PasidEntry.q0(0x9000, 2, PasidEntry.PGTT_NESTED, true), 0x42, PasidEntry.q2(0xa000, 1, PasidEntry.SRE));
        assertThat(pe.q0()).isEqualTo(0x9000L | 1 << 9 | 3 << 6 | 2 << 2 | 1);
        assertThat(pe.pgtt()).isEqualTo(3);
        assertThat(pe.did()).isEqualTo(0x42);
        assertThat(pe.fsptptr()).isEqualTo(0xa000);
        assertThat(pe.flpm()).isEqualTo(1);
        assertThat(pe.sre()).isTrue();
        assertThat(PasidDirEntry.offset(0x12345)).isEqualTo((0x12345 >>> 6) * 8L);
        assertThat(PasidEntry.offset(0x12345)).isEqualTo((0x12345 & 63) * 64L);
    }

    @Test
    void descriptorTypesUseBits3to0And11to9() {
        assertThat(InvDesc.pageGroupResponse(0x310, true, 5, 1, 7).q0() & 0xf).isEqualTo(9);
        InvDesc wide = new InvDesc(0x0e00 | 0x3, 0);
        assertThat(wide.type()).isEqualTo(0x73);
        InvDesc iotlb = InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, 7, 0x12_3000, 4, true);
        assertThat(iotlb.type()).isEqualTo(InvDesc.TYPE_IOTLB);
        assertThat(iotlb.granularity()).isEqualTo(3);
        assertThat(iotlb.did()).isEqualTo(7);
        assertThat(iotlb.address()).isEqualTo(0x12_3000);
        assertThat(iotlb.addressMask()).isEqualTo(4);
        assertThat(iotlb.invalidationHint()).isTrue();
        InvDesc wait = InvDesc.waitStatus(0x5008, 0xfeed, true, true);
        assertThat(wait.q0()).isEqualTo(0xfeedL << 32 | InvDesc.WAIT_PD | InvDesc.WAIT_FN | InvDesc.WAIT_SW | 5);
        InvDesc pgr = InvDesc.pageGroupResponse(0x310, true, 0x12345, 0xf, 0x1ff);
        assertThat(pgr.responseRid()).isEqualTo(0x310);
        assertThat(pgr.pasid()).isEqualTo(0x12345);
        assertThat(pgr.responseCode()).isEqualTo(0xf);
        assertThat(pgr.prgIndex()).isEqualTo(0x1ff);
        assertThat(InvDesc.pasidCache(InvDesc.PCG_PASID, 3, 77).pasid()).isEqualTo(77);
    }

    @Test
    void deviceTlbSizeEncodingRoundTrips() {
        for (int order = 0; order < 10; order++) {
            long base = 0x4000_0000L;
            InvDesc d = InvDesc.deviceTlb(0x310, base, order);
            assertThat(d.deviceTlbRange()).as("order %d", order).containsExactly(base, base + (4096L << order) - 1);
        }
    }

    @Test
    void faultRecordAndPageRequestFields() {
        FaultRecord fr = FaultRecord.of(0x0310, 0x1234, 0xdead_b000L, FaultReason.SS_PERMISSION, true);
        assertThat(fr.hi() >>> 63).isEqualTo(1);
        assertThat((fr.hi() >>> 32) & 0xff).isEqualTo(0x79);
        assertThat((fr.hi() >>> 40) & 0xfffff).isEqualTo(0x1234);
        assertThat(fr.hi() & 0xffff).isEqualTo(0x310);
        assertThat(fr.pasidPresent()).isTrue();
        assertThat(fr.read()).isTrue();
        PageRequest pr = PageRequest.of(0x310, 9, 0x7000_1000L, true, true, true, 0x155);
        assertThat(pr.q0()).isEqualTo(1 | 1 << 8 | 0x310L << 16 | 9L << 32);
        assertThat(pr.q1()).isEqualTo(0x7000_1000L | 0x155 << 3 | 7);
    }

    @Test
    void faultReasonsAreOpen() {
        assertThat(FaultReason.of(0x79)).isEqualTo(FaultReason.SS_PERMISSION);
        assertThat(FaultReason.of(0xee)).isEqualTo(FaultReason.UNKNOWN);
    }
}
