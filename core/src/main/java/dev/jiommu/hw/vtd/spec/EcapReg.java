package dev.jiommu.hw.vtd.spec;

/** VT-d Extended Capability register, offset 0x10 (VT-d 4.1 §11.4.3; iommu-hardware.md §5.1). */
public record EcapReg(long raw) {
    public static final long C = 1L;
    public static final long QI = 1L << 1;
    public static final long DT = 1L << 2;
    public static final long IR = 1L << 3;
    public static final long EIM = 1L << 4;
    public static final long PT = 1L << 6;
    public static final long SC = 1L << 7;
    /** MHMV [23:20] = 0xf, as QEMU reports with interrupt remapping. */
    public static final long MHMV_15 = 0xfL << 20;
    public static final long NEST = 1L << 26;
    public static final long PRS = 1L << 29;
    public static final long ERS = 1L << 30;
    public static final long SRS = 1L << 31;
    public static final long NWFS = 1L << 33;
    public static final long EAFS = 1L << 34;
    public static final long PASID = 1L << 40;
    public static final long DIT = 1L << 41;
    public static final long PDS = 1L << 42;
    public static final long SMTS = 1L << 43;
    public static final long SSADS = 1L << 45;
    public static final long SSTS = 1L << 46;
    public static final long FSTS = 1L << 47;
    public static final long SMPWC = 1L << 48;
    public static final long RPS = 1L << 49;

    /** {@return the raw register with IRO [17:8] and PSS [39:35] set, plus the single-bit flags} */
    public static EcapReg of(int iroUnits, int pasidBits, long flags) {
        long pss = pasidBits > 0 ? ((pasidBits - 1) & 0x1fL) << 35 : 0;
        return new EcapReg(((iroUnits & 0x3ffL) << 8) | pss | flags);
    }

    public boolean has(long bit) {
        return (raw & bit) != 0;
    }

    /** {@return bits [17:8] × 16: the byte offset of the IVA register (IOTLB register at +8)} */
    public int iotlbRegisterOffset() {
        return (int) ((raw >>> 8) & 0x3ff) * 16;
    }

    /** {@return PSS [39:35] + 1: PASID width in bits (0 without ECAP.PASID)} */
    public int pasidBits() {
        return has(PASID) ? (int) ((raw >>> 35) & 0x1f) + 1 : 0;
    }

    public boolean queuedInvalidation() {
        return has(QI);
    }

    public boolean scalableMode() {
        return has(SMTS);
    }

    public boolean nested() {
        return has(SMTS) && has(NEST);
    }

    /** {@return whether second-stage dirty tracking works (Linux's ssads_supported: SSADS and SMPWC)} */
    public boolean dirtyTracking() {
        return has(SSADS) && has(SMPWC);
    }

    @Override
    public String toString() {
        return String.format("EcapReg[0x%x]", raw);
    }
}
