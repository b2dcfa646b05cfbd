package dev.jiommu.hw.vtd.spec;

/**
 * VT-d scalable-mode PASID table entry, 64 bytes, 64 per table indexed by PASID[5:0] (VT-d 4.1 §9.6;
 * iommu-hardware.md §1.3). Only q0–q2 carry fields this model uses; q3–q7 are kept raw.
 *
 * <pre>
 * q0: P 0, FPD 1, AW [4:2], PGTT [8:6], SSADE 9, SSPTPTR [63:12]
 * q1: DID [15:0] (bits 79:64), PWSNP 23, PGSNP 24
 * q2: SRE 0, FLPM [3:2], WPE 4, NXE 5, EAFE 7, FSPTPTR [63:12]
 * </pre>
 */
public record PasidEntry(long q0, long q1, long q2, long q3, long q4, long q5, long q6, long q7) {
    public static final int SIZE_BYTES = 64;
    public static final long P = 1L;
    public static final long FPD = 1L << 1;
    public static final long SSADE = 1L << 9;
    public static final long ADDR_MASK = 0xffff_ffff_ffff_f000L;
    public static final int PGTT_FIRST_STAGE = 1;
    public static final int PGTT_SECOND_STAGE = 2;
    public static final int PGTT_NESTED = 3;
    public static final int PGTT_PASS_THROUGH = 4;
    public static final long PWSNP = 1L << 23;
    public static final long PGSNP = 1L << 24;
    public static final long SRE = 1L;
    public static final long WPE = 1L << 4;
    public static final long NXE = 1L << 5;
    public static final long EAFE = 1L << 7;
    /** q0 bit 5 and bits [11:10] are reserved. */
    public static final long Q0_RESERVED = 0xc20L;

    public static PasidEntry of(long q0, long q1, long q2) {
        return new PasidEntry(q0, q1, q2, 0, 0, 0, 0, 0);
    }

    /** {@return q0 of an entry: present, AW, PGTT, optional SSADE and the second-stage root} */
    public static long q0(long ssptptr, int aw, int pgtt, boolean ssade) {
        return (ssptptr & ADDR_MASK) | ((long) (aw & 7) << 2) | ((long) (pgtt & 7) << 6) | (ssade ? SSADE : 0) | P;
    }

    /** {@return q2 of an entry: the first-stage root, FLPM (0 = 4-level, 1 = 5-level) and flags} */
    public static long q2(long fsptptr, int flpm, long flags) {
        return (fsptptr & ADDR_MASK) | ((long) (flpm & 3) << 2) | flags;
    }

    public boolean present() {
        return (q0 & P) != 0;
    }

    public boolean faultProcessingDisable() {
        return (q0 & FPD) != 0;
    }

    public int aw() {
        return (int) (q0 >>> 2) & 7;
    }

    public int pgtt() {
        return (int) (q0 >>> 6) & 7;
    }

    public boolean ssade() {
        return (q0 & SSADE) != 0;
    }

    public long ssptptr() {
        return q0 & ADDR_MASK;
    }

    public int did() {
        return (int) (q1 & 0xffff);
    }

    public boolean sre() {
        return (q2 & SRE) != 0;
    }

    public int flpm() {
        return (int) (q2 >>> 2) & 3;
    }

    public boolean wpe() {
        return (q2 & WPE) != 0;
    }

    public boolean has2(long bit) {
        return (q2 & bit) != 0;
    }

    public long fsptptr() {
        return q2 & ADDR_MASK;
    }

    public boolean reservedBitsSet() {
        return (q0 & Q0_RESERVED) != 0;
    }

    /** {@return the byte offset of {@code pasid}'s entry in its PASID table} */
    public static long offset(int pasid) {
        return (long) (pasid & 0x3f) * SIZE_BYTES;
    }
}
