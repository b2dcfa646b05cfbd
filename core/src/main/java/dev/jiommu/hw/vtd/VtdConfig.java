package dev.jiommu.hw.vtd;

import dev.jiommu.hw.vtd.spec.CapReg;
import dev.jiommu.hw.vtd.spec.EcapReg;
import dev.jiommu.hw.vtd.spec.VtdRegs;

/**
 * What a VT-d unit is: its CAP and ECAP registers and the sizes of its caches. The registers are
 * the unit's whole capability description; the emulator derives every behaviour from them.
 *
 * @param iotlbEntries        IOTLB size (final translations, tagged DID + PASID + page)
 * @param contextCacheEntries context-cache size (tagged by source id)
 * @param pasidCacheEntries   PASID-cache size (tagged by source id + PASID, carrying the DID)
 * @param nestedWalkCacheEntries nested paging-structure cache size (stage-2 translations of
 *                            first-stage table pages); 0 for none, so every nested miss walks fully
 */
public record VtdConfig(CapReg cap, EcapReg ecap, int iotlbEntries, int contextCacheEntries, int pasidCacheEntries,
                        int nestedWalkCacheEntries) {
    /** QEMU's FRCD offset 0x220 in 16-byte units, as CAP.FRO. */
    public static final int FRO_UNITS = VtdRegs.FRCD / 16;
    /** QEMU's IVA offset 0xf0 in 16-byte units, as ECAP.IRO. */
    public static final int IRO_UNITS = VtdRegs.IVA / 16;

    public VtdConfig {
        if (cap.faultRecordingOffset() != VtdRegs.FRCD || ecap.iotlbRegisterOffset() != VtdRegs.IVA) {
            throw new IllegalArgumentException("this model places FRCD at 0x220 and IVA at 0xf0");
        }
        if (nestedWalkCacheEntries < 0) {
            throw new IllegalArgumentException("nestedWalkCacheEntries " + nestedWalkCacheEntries);
        }
        if (cap.faultRecordCount() > 8) {
            throw new IllegalArgumentException("at most 8 fault recording registers fit below 0x2a0");
        }
    }

    /**
     * QEMU 7.2's {@code -device intel-iommu,intremap=on} on q35 as Linux reads it: CAP
     * 0x00d2008c22260206, ECAP 0xf00f4a. Derived from QEMU 7.2's hw/i386/intel_iommu.c vtd_init
     * defaults (aw-bits 39, so SAGAW 39-bit only and MGAW 39; dma-drain on; one FRCD at 0x220;
     * 16-bit domain ids; MAMV 18; PSI; 2 MiB and 1 GiB SS pages) and its ECAP (QI, IRO 0xf0, IR
     * and MHMV 15 for intremap, PT default on; DT, SC, CM, scalable mode off). EIM is off under
     * TCG; under KVM with a split irqchip QEMU turns it on (ECAP 0xf00f5a): {@link #qemuDefault(boolean)}.
     * Checked against the reference kernel on QEMU (TCG): GET_HW_INFO of a real device there
     * reported exactly this cap and ecap.
     */
    public static VtdConfig qemuDefault() {
        return qemuDefault(false);
    }

    public static VtdConfig qemuDefault(boolean eim) {
        CapReg cap = CapReg.of(6, CapReg.SAGAW_39, 39, FRO_UNITS, 0, 18,
                CapReg.PSI | CapReg.SLLPS_2M | CapReg.SLLPS_1G | CapReg.DWD | CapReg.DRD);
        EcapReg ecap = EcapReg.of(IRO_UNITS, 0, EcapReg.QI | EcapReg.IR | EcapReg.MHMV_15 | EcapReg.PT | (eim ? EcapReg.EIM : 0));
        return new VtdConfig(cap, ecap, 4096, 256, 256, 1024);
    }

    /**
     * A scalable-mode unit with everything iommufd can use: 48-bit (and 39-bit) second stage,
     * first stage with 1 GiB pages, nesting, 20-bit PASIDs, page requests, dirty tracking,
     * device-TLB, pass-through, 8 fault recording registers.
     */
    public static VtdConfig scalable() {
        return scalable(4096, 256, 256);
    }

    public static VtdConfig scalable(int iotlbEntries, int contextCacheEntries, int pasidCacheEntries) {
        CapReg cap = CapReg.of(6, CapReg.SAGAW_39 | CapReg.SAGAW_48, 48, FRO_UNITS, 7, 18,
                CapReg.PSI | CapReg.SLLPS_2M | CapReg.SLLPS_1G | CapReg.DWD | CapReg.DRD | CapReg.FL1GP);
        EcapReg ecap = EcapReg.of(IRO_UNITS, 20, EcapReg.C | EcapReg.QI | EcapReg.DT | EcapReg.IR | EcapReg.MHMV_15 | EcapReg.PT
                | EcapReg.SC | EcapReg.NEST | EcapReg.PRS | EcapReg.SRS | EcapReg.PASID | EcapReg.PDS | EcapReg.SMTS
                | EcapReg.SSADS | EcapReg.SSTS | EcapReg.FSTS | EcapReg.SMPWC);
        return new VtdConfig(cap, ecap, iotlbEntries, contextCacheEntries, pasidCacheEntries, Math.max(16, iotlbEntries / 4));
    }

    /** {@return this configuration with caching mode (CAP.CM) on or off} */
    public VtdConfig withCachingMode(boolean on) {
        return new VtdConfig(new CapReg(on ? cap.raw() | CapReg.CM : cap.raw() & ~CapReg.CM), ecap, iotlbEntries, contextCacheEntries,
                pasidCacheEntries, nestedWalkCacheEntries);
    }

    /** {@return this configuration with other cache sizes} */
    public VtdConfig withCacheSizes(int iotlb, int context, int pasid) {
        return new VtdConfig(cap, ecap, iotlb, context, pasid, nestedWalkCacheEntries);
    }

    /** {@return this configuration with a nested walk cache of {@code entries} (0: none)} */
    public VtdConfig withNestedWalkCache(int entries) {
        return new VtdConfig(cap, ecap, iotlbEntries, contextCacheEntries, pasidCacheEntries, entries);
    }
}
