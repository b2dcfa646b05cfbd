package dev.jiommu.hw.vtd.spec;

/**
 * VT-d scalable-mode context entry, 32 bytes, 128 per table indexed by devfn[6:0] (VT-d 4.1 §9.4).
 * q0: P 0, FPD 1, DTE 2, PASIDE 3, PRE 4, PDTS [11:9], PASIDDIRPTR [63:12]. q1: RID_PASID [19:0]
 * (needs ECAP.RPS). q1 [63:21], q2 and q3 reserved.
 */
public record ScalableContextEntry(long q0, long q1, long q2, long q3) {
    public static final int SIZE_BYTES = 32;
    public static final long P = 1L;
    public static final long FPD = 1L << 1;
    public static final long DTE = 1L << 2;
    public static final long PASIDE = 1L << 3;
    public static final long PRE = 1L << 4;
    public static final long ADDR_MASK = 0xffff_ffff_ffff_f000L;
    /** q0 bits [8:5] are reserved. */
    public static final long Q0_RESERVED = 0x1e0L;
    /** q1 bits [63:21] are reserved (Linux's mask). */
    public static final long Q1_RESERVED = 0xffff_ffff_ffe0_0000L;

    /** @param pdts the PASID directory has 2^(pdts + 7) entries */
    public static ScalableContextEntry of(long pasidDir, int pdts, long flags) {
        return new ScalableContextEntry((pasidDir & ADDR_MASK) | ((long) (pdts & 7) << 9) | flags | P, 0, 0, 0);
    }

    public boolean present() {
        return (q0 & P) != 0;
    }

    public boolean has(long bit) {
        return (q0 & bit) != 0;
    }

    public int pdts() {
        return (int) (q0 >>> 9) & 7;
    }

    /** {@return how many PASIDs the directory covers: 2^(PDTS + 7) entries × 64 PASIDs} */
    public long pasidLimit() {
        return 1L << (pdts() + 7 + 6);
    }

    public long pasidDirectory() {
        return q0 & ADDR_MASK;
    }

    public int ridPasid() {
        return (int) (q1 & 0xfffff);
    }

    public boolean reservedBitsSet() {
        return (q0 & Q0_RESERVED) != 0 || (q1 & Q1_RESERVED) != 0 || q2 != 0 || q3 != 0;
    }
}
