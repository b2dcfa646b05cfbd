package dev.jiommu.hw.vtd.spec;

/**
 * VT-d remapping-unit register offsets and the bits of GCMD/GSTS, FSTS and the queue registers
 * (VT-d 4.1 §11.4; iommu-hardware.md §1.1). All offsets are bytes into the 4 KiB register page.
 */
public final class VtdRegs {
    public static final int VER = 0x00;
    public static final int CAP = 0x08;
    public static final int ECAP = 0x10;
    /** Global command (write-only, 32 bits). */
    public static final int GCMD = 0x18;
    /** Global status (read-only, 32 bits), same bit positions as GCMD. */
    public static final int GSTS = 0x1c;
    /** Root table address: bits [63:12] the table, bit 10 TTM=01 (scalable-mode root table). */
    public static final int RTADDR = 0x20;
    /** Context command: ICC 63, CIRG [62:61], CAIG [60:59], FM [33:32], SID [31:16], DID [15:0]. */
    public static final int CCMD = 0x28;
    /** Fault status (32 bits): PFO 0, PPF 1, IQE 4, ICE 5, ITE 6, PRO 7, FRI [15:8]. */
    public static final int FSTS = 0x34;
    /** Fault event control (32 bits): IM 31, IP 30. */
    public static final int FECTL = 0x38;
    public static final int FEDATA = 0x3c;
    public static final int FEADDR = 0x40;
    public static final int FEUADDR = 0x44;
    /** Invalidation queue head (hardware), index << 4 (<< 5 with 256-bit descriptors). */
    public static final int IQH = 0x80;
    /** Invalidation queue tail (software). */
    public static final int IQT = 0x88;
    /** Invalidation queue address: base [63:12], DW 11, QS [2:0]. */
    public static final int IQA = 0x90;
    /** Invalidation completion status (32 bits): IWC 0. */
    public static final int ICS = 0x9c;
    /** Invalidation event control (32 bits): IM 31, IP 30. */
    public static final int IECTL = 0xa0;
    public static final int IEDATA = 0xa4;
    public static final int IEADDR = 0xa8;
    /** Invalidation queue error record: IQEI [3:0]. */
    public static final int IQER = 0xb0;
    public static final int IRTA = 0xb8;
    /** Page request queue head (software), tail (hardware), address (base [63:12] | PQS [2:0]). */
    public static final int PQH = 0xc0;
    public static final int PQT = 0xc8;
    public static final int PQA = 0xd0;
    /** Page request status (32 bits): PPR 0, PRO 1. */
    public static final int PRS = 0xdc;
    /** Page request event control (32 bits): IM 31, IP 30. */
    public static final int PECTL = 0xe0;
    public static final int PEDATA = 0xe4;
    public static final int PEADDR = 0xe8;
    /** Where this model puts IVA/IOTLB (ECAP.IRO = 0xf, as QEMU). */
    public static final int IVA = 0xf0;
    public static final int IOTLB = 0xf8;
    /** Where this model puts the fault recording registers (CAP.FRO = 0x22, as QEMU). */
    public static final int FRCD = 0x220;
    /** Bytes of the register page. */
    public static final int SIZE_BYTES = 0x1000;

    // GCMD / GSTS bits
    public static final int GCMD_TE = 1 << 31;
    public static final int GCMD_SRTP = 1 << 30;
    public static final int GCMD_SFL = 1 << 29;
    public static final int GCMD_EAFL = 1 << 28;
    public static final int GCMD_WBF = 1 << 27;
    public static final int GCMD_QIE = 1 << 26;
    public static final int GCMD_IRE = 1 << 25;
    public static final int GCMD_SIRTP = 1 << 24;
    public static final int GCMD_CFI = 1 << 23;
    /** GCMD bits that are one-shot commands: their status bit reports "done", not a state. */
    public static final int GCMD_ONE_SHOT = GCMD_SRTP | GCMD_SFL | GCMD_WBF | GCMD_SIRTP;

    /** RTADDR bit 10: the root table is a scalable-mode root table. */
    public static final long RTADDR_SMT = 1L << 10;

    // FSTS bits
    public static final int FSTS_PFO = 1;
    public static final int FSTS_PPF = 1 << 1;
    public static final int FSTS_IQE = 1 << 4;
    public static final int FSTS_ICE = 1 << 5;
    public static final int FSTS_ITE = 1 << 6;
    public static final int FSTS_PRO = 1 << 7;
    public static final int FSTS_FRI_SHIFT = 8;

    /** FECTL/IECTL/PECTL: interrupt mask and interrupt pending. */
    public static final int CTL_IM = 1 << 31;
    public static final int CTL_IP = 1 << 30;

    /** ICS: invalidation wait descriptor complete. */
    public static final int ICS_IWC = 1;
    /** IQA bit 11: 256-bit descriptors. */
    public static final long IQA_DW = 1L << 11;
    /** PRS bits. */
    public static final int PRS_PPR = 1;
    public static final int PRS_PRO = 1 << 1;

    // CCMD fields
    public static final long CCMD_ICC = 1L << 63;
    public static final int CCMD_CIRG_SHIFT = 61;
    public static final int CCMD_CAIG_SHIFT = 59;
    // IOTLB register fields
    public static final long IOTLB_IVT = 1L << 63;
    public static final int IOTLB_IIRG_SHIFT = 60;
    public static final int IOTLB_IAIG_SHIFT = 57;
    public static final int IOTLB_DID_SHIFT = 32;

    private VtdRegs() {
    }
}
