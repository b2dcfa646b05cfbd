package dev.jiommu.iommu.hwinfo;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/** The GET_HW_INFO vendor structs of iommufd-uapi.md §6.1: sizes, field offsets, round trips. */
class HwInfoPayloadsTest {
    @Test
    void vtdPutsCapAndEcapAt8And16() {
        VtdHwInfo info = new VtdHwInfo(VtdHwInfo.FLAG_ERRATA_772415_SPR17, 0x00d2_0086_0046_2f66L, 0x0000_0000_00f0_50daL);
        byte[] bytes = info.bytes();
        assertThat(bytes).hasSize(24);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(b.getInt(0)).isEqualTo(1);
        assertThat(b.getLong(8)).isEqualTo(0x00d2_0086_0046_2f66L);
        assertThat(b.getLong(16)).isEqualTo(0x0000_0000_00f0_50daL);
        assertThat(VtdHwInfo.parse(bytes)).isEqualTo(info);
    }

    @Test
    void smmuv3PutsSixIdrsThenIidrAndAidr() {
        SmmuV3HwInfo info = new SmmuV3HwInfo(0, new int[] {0x10, 0x11, 0x12, 0x13, 0x14, 0x15}, 0x43b, 1);
        byte[] bytes = info.bytes();
        assertThat(bytes).hasSize(40);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(b.getInt(8)).isEqualTo(0x10);
        assertThat(b.getInt(28)).isEqualTo(0x15);
        assertThat(b.getInt(32)).isEqualTo(0x43b);
        assertThat(b.getInt(36)).isEqualTo(1);
        assertThat(SmmuV3HwInfo.parse(bytes)).isEqualTo(info);
    }

    @Test
    void amdAndTegraRoundTripAndShortInputReadsAsZero() {
        AmdHwInfo amd = new AmdHwInfo(0x246577efa2254afaL, 0x1);
        assertThat(amd.bytes()).hasSize(16);
        assertThat(AmdHwInfo.parse(amd.bytes())).isEqualTo(amd);
        assertThat(AmdHwInfo.parse(new byte[] {1})).isEqualTo(new AmdHwInfo(1, 0));
        Tegra241CmdqvHwInfo tegra = new Tegra241CmdqvHwInfo(0, 1, 2, 4);
        assertThat(tegra.bytes()).containsExactly(0, 0, 0, 0, 1, 2, 4, 0);
        assertThat(Tegra241CmdqvHwInfo.parse(tegra.bytes())).isEqualTo(tegra);
    }
}
